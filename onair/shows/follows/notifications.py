"""Telling followers: a row per follower (the list, the unread count) and, for whoever has a
page open, an event on their stream.

`NotificationHub` is the in-process per-user bus, as `RoomHub` is for rooms: `publish(user_id,
...)` reaches that user's open streams on this node. With a `relay` (the Redis bus's control
channel, several nodes), `publish` also goes out on the channel and every other node hands it
to the streams it holds; a fan-out is announced once and each node looks up the rows of its
own connected users.

`Notifier` does the fan-out: one INSERT ... SELECT writes every follower's row, then the users
with a stream open get their event. A host with many followers does not wait for it: above
`inline_limit` followers it runs in a task of its own after the response.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.clock import Clock
from onair.db.base import UTCDateTime
from onair.shows.follows.models import Follow, Notification, NotificationKind
from onair.shows.follows.schemas import NotificationOut
from onair.shows.models import Show

log = logging.getLogger("onair.notifications")

STREAM_QUEUE = 64
"""Events a stream may have waiting; one that falls further behind is closed (it reconnects
with Last-Event-ID and catches up from the database)."""
INLINE_FANOUT = 500
"""Up to this many followers the fan-out is done before the response; more, after it."""
_CHUNK = 500  # ids per IN (...) list when looking up the rows of users who are connected
SHUTDOWN_POLL_S = 0.5


@dataclass(frozen=True)
class UserEvent:
    """One server-sent event for one user: `notification`, `unread` or `closed`."""

    type: str
    data: dict[str, Any]
    id: int | None = None

    @cached_property
    def sse(self) -> bytes:
        text = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.type}\ndata: {text}\n\n".encode()


class ServerCycle(Protocol):
    """What a stream can see of the server's request cycle: uvicorn turns `keep_alive` off on
    every open response when it begins a graceful shutdown."""

    keep_alive: bool


class Subscription:
    """One open stream of one user: events wait in a bounded deque until its response sends
    them. `closed` says why it must end (the client left, the user was suspended...)."""

    def __init__(self, user_id: int, cycle: ServerCycle | None, maxsize: int) -> None:
        self.user_id = user_id
        self.closed: str | None = None
        self._events: deque[UserEvent] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        # A cycle that starts without keep-alive (HTTP/1.0) cannot tell of a shutdown.
        self._cycle = cycle if cycle is not None and cycle.keep_alive else None

    @property
    def server_stopping(self) -> bool:
        return self._cycle is not None and not self._cycle.keep_alive

    def offer(self, event: UserEvent) -> bool:
        if self.closed is not None:
            return False
        if len(self._events) >= self._maxsize:
            self.close("too_slow")
            return False
        self._events.append(event)
        self._wake()
        return True

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._wake()

    async def next(self, wait_s: float) -> UserEvent | None:
        """The next event, or None after `wait_s` seconds without one (or once closed)."""
        if not self._events and self.closed is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait([self._waiter], timeout=wait_s)
            finally:
                self._waiter = None
        return self._events.popleft() if self._events else None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Relay(Protocol):
    """A channel to the other nodes (onair.bus.redis_bus.Channel)."""

    def broadcast(self, op: str, body: dict[str, Any]) -> None: ...

    def on(self, handler: Callable[[str, dict[str, Any]], Awaitable[None] | None]) -> None: ...


class NotificationHub:
    """Every user's open streams on this node, and through `relay` on the others."""

    def __init__(
        self,
        *,
        maxsize: int = STREAM_QUEUE,
        poll_s: float = SHUTDOWN_POLL_S,
        relay: Relay | None = None,
    ) -> None:
        self._streams: dict[int, set[Subscription]] = {}
        self._maxsize = maxsize
        self._poll_s = poll_s
        self._watcher: asyncio.Task[None] | None = None
        self.relay = relay
        self.on_announcement: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        """What the Notifier does with another node's fan-out (for its connected users)."""
        if relay is not None:
            relay.on(self._from_relay)

    def subscribe(self, user_id: int, cycle: ServerCycle | None = None) -> Subscription:
        sub = Subscription(user_id, cycle, self._maxsize)
        self._streams.setdefault(user_id, set()).add(sub)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_for_shutdown())
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        mine = self._streams.get(sub.user_id)
        if mine is None:
            return
        mine.discard(sub)
        if not mine:
            del self._streams[sub.user_id]

    def connected_users(self) -> set[int]:
        return set(self._streams)

    def streams(self, user_id: int) -> int:
        return len(self._streams.get(user_id, ()))

    def publish(
        self, user_id: int, type_: str, data: dict[str, Any], *, event_id: int | None = None
    ) -> int:
        """Hands the event to the user's open streams (on every node); returns how many here
        took it."""
        if self.relay is not None:
            self.relay.broadcast(
                "publish", {"user_id": user_id, "type": type_, "data": data, "id": event_id}
            )
        return self.deliver(user_id, type_, data, event_id=event_id)

    def deliver(
        self, user_id: int, type_: str, data: dict[str, Any], *, event_id: int | None = None
    ) -> int:
        """Hands the event to the user's open streams on this node alone."""
        subs = self._streams.get(user_id)
        if not subs:
            return 0
        event = UserEvent(type_, data, event_id)
        return sum(sub.offer(event) for sub in list(subs))

    def disconnect_user(self, user_id: int, reason: str) -> int:
        """Ends the user's streams (they were suspended or banned); returns how many here."""
        if self.relay is not None:
            self.relay.broadcast("disconnect_user", {"user_id": user_id, "reason": reason})
        return self._disconnect_here(user_id, reason)

    def _disconnect_here(self, user_id: int, reason: str) -> int:
        subs = list(self._streams.get(user_id, ()))
        for sub in subs:
            sub.close(reason)
        return len(subs)

    def announce(self, body: dict[str, Any]) -> None:
        """Tells the other nodes of a fan-out, for their own connected users."""
        if self.relay is not None:
            self.relay.broadcast("announce", body)

    def _from_relay(self, op: str, body: dict[str, Any]) -> Awaitable[None] | None:
        user_id = int(body.get("user_id") or 0)
        if op == "publish":
            event_id = body.get("id")
            self.deliver(
                user_id,
                str(body["type"]),
                dict(body["data"]),
                event_id=None if event_id is None else int(event_id),
            )
        elif op == "disconnect_user":
            self._disconnect_here(user_id, str(body["reason"]))
        elif op == "announce" and self.on_announcement is not None:
            return self.on_announcement(body)
        return None

    def close_all(self, reason: str) -> None:
        for subs in list(self._streams.values()):
            for sub in list(subs):
                sub.close(reason)

    async def aclose(self) -> None:
        self.close_all("server_shutdown")
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _watch_for_shutdown(self) -> None:
        # The app hears of a server shutdown only after every response has ended, and a
        # stream never ends by itself: so the streams look at the server's own cycle.
        while self._streams:
            await asyncio.sleep(self._poll_s)
            subs = [s for group in self._streams.values() for s in group]
            if any(s.server_stopping for s in subs):
                log.info("server stopping: ending %d notification streams", len(subs))
                self.close_all("server_shutdown")


@dataclass(frozen=True)
class _Announcement:
    show_id: int
    host_id: int
    kind: NotificationKind
    payload: dict[str, Any]
    """The event as every follower gets it, but for its id and their unread count."""


@dataclass
class Notifier:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    hub: NotificationHub
    inline_limit: int = INLINE_FANOUT
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.hub.on_announcement = self._announced

    async def show_went_live(self, show: Show) -> None:
        await self._announce(show, NotificationKind.live)

    async def show_scheduled(self, show: Show) -> None:
        """A show was created with a start time, or its start time was set or moved."""
        await self._announce(show, NotificationKind.scheduled)

    async def idle(self) -> None:
        """Waits for the fan-outs running in the background (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.idle()

    async def _announce(self, show: Show, kind: NotificationKind) -> None:
        # In a session of its own, after the caller's commit, and never the reason a go-live
        # or an edit fails: the show has changed whatever happens here.
        note = _Announcement(
            show.id,
            show.host_id,
            kind,
            NotificationOut.about(0, kind, show, self.clock.now()).model_dump(mode="json"),
        )
        try:
            async with self.sessions() as db:
                followers = await db.scalar(
                    select(func.count()).select_from(Follow).where(Follow.host_id == show.host_id)
                )
                if not followers:
                    return
                if followers <= self.inline_limit:
                    await self._deliver(db, note)
                    return
            task = asyncio.get_running_loop().create_task(self._deliver_alone(note))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("notifying the followers of show=%s (%s) failed", show.id, kind)

    async def _deliver_alone(self, note: _Announcement) -> None:
        try:
            async with self.sessions() as db:
                await self._deliver(db, note)
        except Exception:
            log.exception("notifying the followers of show=%s (%s) failed", note.show_id, note.kind)

    async def _deliver(self, db: AsyncSession, note: _Announcement) -> None:
        now = self.clock.now()
        # What followers have not read about this show yet is replaced, not piled up: a host
        # moving the start three times, then going live, leaves one notification each.
        await db.execute(
            delete(Notification).where(
                Notification.show_id == note.show_id, Notification.read_at.is_(None)
            )
        )
        rows = select(
            Follow.follower_id,
            literal(note.kind.name, Notification.__table__.c.kind.type),
            literal(note.show_id),
            literal(note.host_id),
            literal(now, UTCDateTime()),
        ).where(Follow.host_id == note.host_id)
        await db.execute(
            insert(Notification).from_select(
                ["user_id", "kind", "show_id", "host_id", "created_at"], rows
            )
        )
        await db.commit()
        log.info("show=%s %s: followers notified", note.show_id, note.kind)
        self.hub.announce(
            {
                "show_id": note.show_id,
                "host_id": note.host_id,
                "kind": note.kind.name,
                "payload": note.payload,
            }
        )
        await self._publish(db, note)

    async def _announced(self, body: dict[str, Any]) -> None:
        """Another node notified a show's followers: the ones connected here get their event."""
        try:
            note = _Announcement(
                int(body["show_id"]),
                int(body["host_id"]),
                NotificationKind[str(body["kind"])],
                dict(body["payload"]),
            )
            async with self.sessions() as db:
                await self._publish(db, note)
        except Exception:
            log.exception("announcing show=%s to this node's followers failed", body.get("show_id"))

    async def _publish(self, db: AsyncSession, note: _Announcement) -> None:
        online = sorted(self.hub.connected_users())
        for chunk in _chunks(online, _CHUNK):
            found = await db.execute(
                select(Notification.user_id, func.max(Notification.id))
                .where(Notification.show_id == note.show_id, Notification.user_id.in_(chunk))
                .group_by(Notification.user_id)
            )
            latest: dict[int, int] = {user_id: note_id for user_id, note_id in found}
            if not latest:
                continue
            unread = await unread_counts(db, list(latest))
            for user_id, note_id in latest.items():
                data = {**note.payload, "id": note_id, "unread": unread.get(user_id, 0)}
                self.hub.deliver(user_id, "notification", data, event_id=note_id)


async def unread_counts(db: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    found = await db.execute(
        select(Notification.user_id, func.count())
        .where(Notification.user_id.in_(list(user_ids)), Notification.read_at.is_(None))
        .group_by(Notification.user_id)
    )
    return {user_id: count for user_id, count in found}


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
