"""Room events and their fan-out. A slow client is dropped, never slowing the room.

Every event gets a per-room sequence number and a server timestamp; the last HISTORY events are
kept so a client that reconnects with the last number it saw gets exactly what it missed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from onair.clock import Clock

log = logging.getLogger("onair.rooms")

HISTORY = 1000
CLIENT_QUEUE = 256


@dataclass(frozen=True)
class RoomEvent:
    type: str
    seq: int
    ts: float
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "seq": self.seq, "ts": self.ts, **self.data}


class RoomClient:
    """One connection's bounded send queue; `dropped` is set when it could not keep up."""

    def __init__(self, client_id: int, maxsize: int = CLIENT_QUEUE) -> None:
        self.id = client_id
        self.queue: asyncio.Queue[RoomEvent] = asyncio.Queue(maxsize)
        self.dropped = asyncio.Event()

    def offer(self, event: RoomEvent) -> bool:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped.set()
            return False
        return True

    async def next_batch(self, limit: int = 100) -> list[RoomEvent]:
        """Waits for one event, then takes whatever else is queued: one frame, many events."""
        batch = [await self.queue.get()]
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch


@dataclass
class Room:
    show_id: int
    clock: Clock
    history: deque[RoomEvent] = field(default_factory=lambda: deque(maxlen=HISTORY))
    clients: dict[int, RoomClient] = field(default_factory=dict)
    seq: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    """What a newcomer needs at once (now playing...), kept by event type."""

    def publish(self, type_: str, data: dict[str, Any], *, sticky: bool = False) -> RoomEvent:
        self.seq += 1
        event = RoomEvent(type_, self.seq, self.clock.now().timestamp(), data)
        self.history.append(event)
        if sticky:
            self.state[type_] = event.as_json()
        for client in list(self.clients.values()):
            if not client.offer(event):
                log.info("room %s: dropping client %s that fell behind", self.show_id, client.id)
                self.clients.pop(client.id, None)
        return event

    def since(self, seq: int) -> list[RoomEvent] | None:
        """Events after `seq`, or None when they are no longer all in the history."""
        if seq >= self.seq:
            return []
        if not self.history or self.history[0].seq > seq + 1:
            return None
        return [e for e in self.history if e.seq > seq]


class RoomHub:
    """Every room on this node. The in-process bus: publish reaches this node's clients."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rooms: dict[int, Room] = {}
        self._ids: Iterator[int] = itertools.count(1)

    def room(self, show_id: int) -> Room:
        room = self._rooms.get(show_id)
        if room is None:
            room = self._rooms[show_id] = Room(show_id, self._clock)
        return room

    def publish(
        self, show_id: int, type_: str, data: dict[str, Any], *, sticky: bool = False
    ) -> RoomEvent:
        return self.room(show_id).publish(type_, data, sticky=sticky)

    def join(self, show_id: int, maxsize: int = CLIENT_QUEUE) -> RoomClient:
        client = RoomClient(next(self._ids), maxsize)
        self.room(show_id).clients[client.id] = client
        return client

    def leave(self, show_id: int, client: RoomClient) -> None:
        room = self._rooms.get(show_id)
        if room is not None:
            room.clients.pop(client.id, None)

    def listeners(self, show_id: int) -> int:
        room = self._rooms.get(show_id)
        return len(room.clients) if room else 0
