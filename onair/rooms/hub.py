"""Room events and their fan-out. A slow client is dropped, never slowing the room.

Every event gets a per-room sequence number and a server timestamp; the last HISTORY events are
kept so a client that reconnects with the last number it saw gets exactly what it missed. An
event may be for the crew only (held messages, song requests) or for one user (a warning, an
acknowledgement); the others never see it, in the live fan-out or on a catch-up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from onair.clock import Clock
from onair.rooms.reactions import ReactionBursts
from onair.rooms.wire import Wire, text_frame

log = logging.getLogger("onair.rooms")

HISTORY = 1000
CLIENT_QUEUE = 256
MAX_BUFFERED = 512 * 1024
"""Bytes a connection written straight to may have unsent before it counts as too slow."""

ROOM_IDLE_S = 900.0
"""A room nobody has joined or left for this long is forgotten (its history and counters),
unless its show's studio runs here."""
SWEEP_EVERY_S = 60.0

CLOSE_TOO_SLOW = 4408
CLOSE_REMOVED = 4403


@dataclass(frozen=True)
class RoomEvent:
    type: str
    seq: int
    ts: float
    data: dict[str, Any]
    crew_only: bool = False
    to_user: int | None = None

    def as_json(self) -> dict[str, Any]:
        if not self.seq:  # a reply to one client (an acknowledgement, an error): not sequenced
            return {"type": self.type, "ts": self.ts, **self.data}
        return {"type": self.type, "seq": self.seq, "ts": self.ts, **self.data}

    @cached_property
    def text(self) -> str:
        """The event as JSON, encoded once however many clients it goes to."""
        return json.dumps(self.as_json(), ensure_ascii=False, separators=(",", ":"))

    @cached_property
    def wire(self) -> bytes:
        """The event alone in a frame, as written straight to connections."""
        return text_frame(("[" + self.text + "]").encode())


def frame(events: Iterable[RoomEvent]) -> str:
    """One WebSocket frame: a JSON array of events, joined from their cached encodings."""
    return "[" + ",".join(e.text for e in events) + "]"


class RoomClient:
    """One connection, who is behind it, and how events reach it.

    Until the connection has had its welcome and catch-up, events wait in a bounded queue;
    from then on, when the server exposes the connection's transport (`wire`), each event's
    frame is written straight to it, and more than MAX_BUFFERED unsent bytes make it too slow.
    `closing` is set when the connection must end: it could not keep up (4408), or its user
    was removed, banned or suspended (4403); `close_code` and `close_reason` say which.
    """

    def __init__(
        self, client_id: int, user_id: int | None, crew: bool, maxsize: int = CLIENT_QUEUE
    ) -> None:
        self.id = client_id
        self.user_id = user_id
        self.crew = crew
        self.queue: asyncio.Queue[RoomEvent] = asyncio.Queue(maxsize)
        self.wire: Wire | None = None
        self.closing = asyncio.Event()
        self.close_code = CLOSE_TOO_SLOW
        self.close_reason = "too slow: reconnect with since"

    def sees(self, event: RoomEvent) -> bool:
        if event.to_user is not None:
            return event.to_user == self.user_id
        return self.crew or not event.crew_only

    def offer(self, event: RoomEvent) -> bool:
        """Sends or queues `event`; False (and closing) when the client cannot keep up."""
        wire = self.wire
        if wire is not None:
            if self.closing.is_set() or wire.is_closing():
                return True  # going anyway: its pump takes it out of the room, quietly
            if wire.get_write_buffer_size() > MAX_BUFFERED:
                self.close(CLOSE_TOO_SLOW, "too slow: reconnect with since")
                return False
            wire.write(event.wire)
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close(CLOSE_TOO_SLOW, "too slow: reconnect with since")
            return False
        return True

    def reply(self, type_: str, data: dict[str, Any], ts: float) -> None:
        """An answer to this client alone, outside the room's sequence."""
        self.offer(RoomEvent(type_, 0, ts, data, to_user=self.user_id))

    def close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()
            self.wire = None  # the close frame goes the ordinary way, after what was written

    async def next_batch(self, limit: int = 200) -> list[RoomEvent]:
        """Waits for one event, then takes whatever else is queued: one frame, many events."""
        batch = [await self.queue.get()]
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch


class RoomRelay(Protocol):
    """Carries a room's events through a bus shared by several nodes (onair.bus.redis_bus).

    `send` is called in publish order and must keep it; the bus gives the event its sequence
    number and hands it back, on every node, to `Room.deliver`. `follow` returns once the
    room's sequence, state and history on this node are the bus's (a client may then join).
    `broadcast` tells the other nodes of a change to their own connections (`RoomHub.apply`).
    """

    def send(self, room: Room, event: RoomEvent, sticky: bool) -> None: ...

    async def follow(self, room: Room) -> None: ...

    def presence(self, show_id: int) -> int | None: ...

    def broadcast(self, op: str, body: dict[str, Any]) -> None: ...

    def following(self) -> list[int]:
        """The rooms whose events this node receives."""
        ...


@dataclass
class Room:
    show_id: int
    clock: Clock
    history: deque[RoomEvent] = field(default_factory=lambda: deque(maxlen=HISTORY))
    clients: dict[int, RoomClient] = field(default_factory=dict)
    seq: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    """What a newcomer needs at once (now playing...), kept by event type."""
    reactions: dict[str, int] = field(default_factory=dict)
    """Reactions since the last burst was published."""
    reactions_total: int = 0
    """Every reaction in the bursts delivered since the room opened, whichever node's clients
    made them (the host's analytics count them)."""
    chat_version: int = 0
    """Counts the public chat events, so a welcome's copy of the chat knows when it is stale."""
    chat_cache: tuple[int, dict[str, Any]] | None = None
    """The last 50 messages and the chat settings as of `chat_version`, for welcomes."""
    deliveries: int = 0
    """Events handed to clients in the live fan-out (read by /metrics; never decreases)."""
    chat_deliveries: int = 0
    """...of which public chat events (`chat.*`)."""
    relay: RoomRelay | None = None
    """The bus across nodes; None: this node alone numbers and fans out the room's events."""
    touched: float = 0.0
    """Monotonic time a client last joined or left (or the room was made)."""

    def publish(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        sticky: bool = False,
        crew_only: bool = False,
        to_user: int | None = None,
    ) -> RoomEvent | None:
        """Numbers the event and hands it to the room's clients; through a relay, the bus
        numbers it and every node's clients get it a moment later (None is returned)."""
        ts = self.clock.now().timestamp()
        if self.relay is not None:
            self.relay.send(self, RoomEvent(type_, 0, ts, data, crew_only, to_user), sticky)
            return None
        event = RoomEvent(type_, self.seq + 1, ts, data, crew_only, to_user)
        self.deliver(event, sticky)
        return event

    def deliver(self, event: RoomEvent, sticky: bool = False) -> None:
        """Keeps a numbered event (history, sticky state) and fans it out to this node's clients."""
        self.seq = event.seq
        chat = event.type.startswith("chat.") and not event.crew_only and event.to_user is None
        if chat:
            self.chat_version += 1
        self.history.append(event)
        if event.type == "reactions":
            self.reactions_total += sum(event.data.get("counts", {}).values())
        if sticky:
            self.state[event.type] = event.as_json()
        delivered = 0
        for client in list(self.clients.values()):
            if not client.sees(event):
                continue
            if client.offer(event):
                delivered += 1
            else:
                log.info("room %s: dropping client %s that fell behind", self.show_id, client.id)
                self.clients.pop(client.id, None)
        self.deliveries += delivered
        if chat:
            self.chat_deliveries += delivered

    def since(self, seq: int, client: RoomClient) -> list[RoomEvent] | None:
        """What `client` may see after `seq`, or None when it is no longer all in the history
        (or `seq` is from before the room was last made: this node restarted, or forgot it)."""
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.history or self.history[0].seq > seq + 1:
            return None
        return [e for e in self.history if e.seq > seq and client.sees(e)]


class RoomHub:
    """Every room on this node. Alone, it is the bus: publish reaches this node's clients.

    With a `relay` (several nodes, onair.bus), publish goes through the bus and comes back to
    every node's clients in one order; a room is followed (`open`) before a client joins it,
    and changes to a user's connections (`disconnect_user`, `set_crew`, `notify_user`) are
    made here at once and broadcast for the other nodes to make to theirs.
    """

    def __init__(self, clock: Clock, relay: RoomRelay | None = None) -> None:
        self._clock = clock
        self._rooms: dict[int, Room] = {}
        self._ids: Iterator[int] = itertools.count(1)
        self.reactions = ReactionBursts()
        self.relay = relay
        self.keep: Callable[[int], bool] = lambda show_id: False
        """Whether a room must be kept though nobody is connected (its studio runs here and
        reads its counters); set by the app."""
        self._swept = clock.monotonic()

    def room(self, show_id: int) -> Room:
        room = self._rooms.get(show_id)
        if room is None:
            room = Room(show_id, self._clock, relay=self.relay, touched=self._clock.monotonic())
            self._rooms[show_id] = room
        return room

    async def open(self, show_id: int) -> Room:
        """The room, ready for a client to join: followed on the bus when there is one."""
        room = self.room(show_id)
        if self.relay is not None:
            await self.relay.follow(room)
        return room

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def publish(
        self,
        show_id: int,
        type_: str,
        data: dict[str, Any],
        *,
        sticky: bool = False,
        crew_only: bool = False,
        to_user: int | None = None,
    ) -> RoomEvent | None:
        return self.room(show_id).publish(
            type_, data, sticky=sticky, crew_only=crew_only, to_user=to_user
        )

    def join(
        self,
        show_id: int,
        *,
        user_id: int | None = None,
        crew: bool = False,
        maxsize: int = CLIENT_QUEUE,
    ) -> RoomClient:
        client = RoomClient(next(self._ids), user_id, crew, maxsize)
        room = self.room(show_id)
        room.clients[client.id] = client
        room.touched = self._clock.monotonic()
        return client

    def leave(self, show_id: int, client: RoomClient) -> None:
        room = self._rooms.get(show_id)
        if room is not None:
            room.clients.pop(client.id, None)
            room.touched = self._clock.monotonic()
        self.forget_idle()

    def forget_idle(self, *, force: bool = False) -> int:
        """Forgets the rooms nobody has joined or left for ROOM_IDLE_S, but those `keep` holds
        and those the bus still follows (it delivers to the room it loaded). Runs at most once a
        minute unless `force`d; returns how many rooms went. A client that comes back later
        with `since` gets a reset and the chat from the database."""
        now = self._clock.monotonic()
        if not force and now - self._swept < SWEEP_EVERY_S:
            return 0
        self._swept = now
        followed = set(self.relay.following()) if self.relay is not None else set()
        idle = [
            show_id
            for show_id, room in self._rooms.items()
            if not room.clients
            and now - room.touched > ROOM_IDLE_S
            and show_id not in followed
            and not self.keep(show_id)
        ]
        for show_id in idle:
            del self._rooms[show_id]
        if idle:
            log.debug("forgot %d idle rooms", len(idle))
        return len(idle)

    def listeners(self, show_id: int) -> int:
        """Connections to the room on this node."""
        room = self._rooms.get(show_id)
        return len(room.clients) if room else 0

    def presence(self, show_id: int) -> int:
        """Connections to the room on every node: the bus's last count (refreshed every
        couple of seconds), or this node's when there is no bus or it has not counted yet."""
        counted = self.relay.presence(show_id) if self.relay is not None else None
        return self.listeners(show_id) if counted is None else counted

    def users_here(self, show_id: int) -> set[int] | None:
        """The signed-in users connected to the room, or None when that is not known here
        (with a bus, they may be connected to another node)."""
        if self.relay is not None:
            return None
        room = self._rooms.get(show_id)
        return {c.user_id for c in room.clients.values() if c.user_id} if room else set()

    def _clients_of(self, user_id: int, show_ids: Iterable[int] | None) -> Iterator[RoomClient]:
        rooms = (
            self.rooms()
            if show_ids is None
            else [r for r in (self._rooms.get(i) for i in show_ids) if r is not None]
        )
        for room in rooms:
            for client in list(room.clients.values()):
                if client.user_id == user_id:
                    yield client

    def disconnect_user(
        self, user_id: int, reason: str, *, show_ids: Iterable[int] | None = None
    ) -> int:
        """Closes the user's connections (to the given rooms, or all); returns how many here."""
        shows = None if show_ids is None else list(show_ids)
        self._broadcast("disconnect_user", {"user_id": user_id, "reason": reason, "shows": shows})
        closed = 0
        for client in self._clients_of(user_id, shows):
            client.close(CLOSE_REMOVED, reason)
            closed += 1
        return closed

    def set_crew(self, show_id: int, user_id: int, crew: bool) -> None:
        """A co-host accepted or was removed: their open connections see crew events or not."""
        self._broadcast("set_crew", {"show_id": show_id, "user_id": user_id, "crew": crew})
        for client in self._clients_of(user_id, [show_id]):
            client.crew = crew

    def notify_user(self, user_id: int, type_: str, data: dict[str, Any]) -> int:
        """An event for one user in every room they are in (a warning, a suspension).

        Alone, a numbered event in each of those rooms; with a bus, each node hands it to the
        user's connections there as a reply (no node knows where else the user is, and one
        numbered event per node would reach a user connected twice twice)."""
        if self.relay is not None:
            self._broadcast("notify_user", {"user_id": user_id, "type": type_, "data": data})
            return self._reply_to_user(user_id, type_, data)
        sent = 0
        for room in self.rooms():
            if any(c.user_id == user_id for c in room.clients.values()):
                room.publish(type_, data, to_user=user_id)
                sent += 1
        return sent

    def apply(self, op: str, body: dict[str, Any]) -> None:
        """What another node broadcast, done to this node's connections."""
        if op == "disconnect_user":
            for client in self._clients_of(int(body["user_id"]), body.get("shows")):
                client.close(CLOSE_REMOVED, str(body["reason"]))
        elif op == "set_crew":
            for client in self._clients_of(int(body["user_id"]), [int(body["show_id"])]):
                client.crew = bool(body["crew"])
        elif op == "notify_user":
            self._reply_to_user(int(body["user_id"]), str(body["type"]), dict(body["data"]))

    def _reply_to_user(self, user_id: int, type_: str, data: dict[str, Any]) -> int:
        ts = self._clock.now().timestamp()
        clients = list(self._clients_of(user_id, None))
        for client in clients:
            client.reply(type_, data, ts)
        return len(clients)

    def _broadcast(self, op: str, body: dict[str, Any]) -> None:
        if self.relay is not None:
            self.relay.broadcast(op, body)
