"""The Redis bus: room events, presence and a control channel shared by several nodes.

- **Rooms.** One Redis Stream per room is its order and its history: a script (scripts.PUBLISH)
  takes the room's next sequence number and appends the event under the stream id `seq-0`, so
  the numbers and the stream's order agree on every node. `Room.publish` stays synchronous: the
  event waits in this node's queue and one writer task sends the queue, in order, in pipelines;
  a pipeline cut off halfway is sent again whole, and the script skips the events of it that
  went through (each is numbered by its writer).
  One reader task reads the streams of the rooms this node has clients in (XREAD BLOCK on all
  of them at once) and hands each event to the local `Room.deliver`, the publisher's own
  clients included, so everyone sees one order. A room is loaded (sequence, sticky state, last
  HISTORY events) when its first client here joins, so `since` works on any node.
- **Presence.** Every HEARTBEAT_S a node writes how many connections each room has here and
  that it is alive until now + NODE_TTL_S; the counts are summed over the nodes still alive,
  so a node that dies stops counting within NODE_TTL_S.
- **Control.** A Pub/Sub channel for what is not a room event: a user's connections to close
  or to make crew, notifications for a user's open pages (`channel(topic)`).

When Redis goes away the loops retry by themselves; events wait in the queue meanwhile. Once
back, each node puts back what an empty Redis would have lost (scripts.RESUME: the counter is
never below what a node has seen, the sticky state), and a room whose events were lost for
good (a gap in the numbers) is loaded again and its clients told to reconnect with `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from onair.bus import scripts
from onair.clock import Clock
from onair.rooms.hub import CLOSE_TOO_SLOW, HISTORY, Room, RoomEvent, RoomHub

log = logging.getLogger("onair.bus")

ROOM_TTL_S = 7 * 86400
"""A room's keys outlive its last event by this long."""
BLOCK_MS = 2000
HEARTBEAT_S = 2.0
NODE_TTL_S = 6.0
UNFOLLOW_AFTER_S = 30.0
"""A room without clients here is read for this long more (a page reloading comes back)."""
MAX_PENDING = 100_000
"""Events and messages waiting for Redis; beyond, the oldest are dropped (and logged)."""
BATCH = 500
RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

_Entries = list[tuple[bytes, dict[bytes, bytes]]]
Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]


@dataclass
class _Followed:
    room: Room
    loaded: bool = False
    """Its sequence, state and history are the bus's; False: load it (again) first."""
    resync: bool = False
    """Events were lost for good: once loaded again, its clients reconnect with `since`."""
    sticky: dict[str, str] = field(default_factory=dict)
    """The sticky events as stored ("seq payload" by type), to put back in an empty Redis."""
    idle_since: float | None = None


@dataclass(frozen=True)
class _Event:
    show_id: int
    payload: str
    sticky_type: str
    number: int
    """This bus's count of the events it sent: a retried batch's events already in the stream
    are known by it (scripts.PUBLISH), so a batch cut off halfway is never published twice."""


@dataclass(frozen=True)
class _Message:
    payload: str


class Channel:
    """One topic of the control channel, as `NotificationHub` and others use it."""

    def __init__(self, bus: RedisBus, topic: str) -> None:
        self._bus = bus
        self.topic = topic

    def broadcast(self, op: str, body: dict[str, Any]) -> None:
        """Tells every other node (not this one) of `op`, after what this node sent before."""
        self._bus.send_control(self.topic, op, body)

    def on(self, handler: Handler) -> None:
        self._bus.handlers[self.topic] = handler


class RedisBus:
    """This node's connection to the bus. `attach` a RoomHub; it is then the hub's relay."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        node_id: str,
        clock: Clock,
        prefix: str = "onair:",
        heartbeat_s: float = HEARTBEAT_S,
        node_ttl_s: float = NODE_TTL_S,
    ) -> None:
        self.client = client
        self.node_id = node_id
        self.prefix = prefix
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._node_ttl_s = node_ttl_s
        self._hub: RoomHub | None = None
        self.handlers: dict[str, Handler] = {}
        self._publish = client.register_script(scripts.PUBLISH)
        # Who numbers the events this bus sends: a node that restarts with the same id is
        # another writer, whose count starts again.
        self._writer = f"{node_id}/{secrets.token_hex(4)}"
        self._numbers = itertools.count(1)
        self._resume_script = client.register_script(scripts.RESUME)
        self._presence_script = client.register_script(scripts.PRESENCE)
        self._pending: deque[_Event | _Message] = deque()
        self._dropped = 0
        self._has_pending = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._ready = asyncio.Event()
        self._ready.set()
        self._stale = False
        self._followed: dict[int, _Followed] = {}
        self._by_key: dict[bytes, int] = {}
        self._loading: dict[int, asyncio.Future[None]] = {}
        self._published: dict[int, int] = {}
        """The last sequence number this node got back for each room it published to."""
        self._wake_id = "0-0"
        self._present: dict[int, int] = {}
        self._reported: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, node_id: str, clock: Clock, prefix: str = "onair:") -> RedisBus:
        # No retries inside redis-py: the loops here retry, and a request must not hang.
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=BLOCK_MS / 1000 + 3,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, node_id=node_id, clock=clock, prefix=prefix)

    # --- keys ----------------------------------------------------------------------------

    def _key(self, *parts: object) -> str:
        return self.prefix + "bus:" + ":".join(str(p) for p in parts)

    def _room_keys(self, show_id: int) -> list[str]:
        return [
            self._key("room", show_id, "seq"),
            self._key("room", show_id, "events"),
            self._key("room", show_id, "state"),
        ]

    # --- life ----------------------------------------------------------------------------

    def attach(self, hub: RoomHub) -> None:
        self._hub = hub
        self.handlers["rooms"] = hub.apply

    def channel(self, topic: str) -> Channel:
        return Channel(self, topic)

    def start(self) -> None:
        """Starts the loops (also done at the first use, from within the event loop)."""
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="bus-writer"),
            asyncio.create_task(self._read_loop(), name="bus-reader"),
            asyncio.create_task(self._heartbeat_loop(), name="bus-presence"),
            asyncio.create_task(self._control_loop(), name="bus-control"),
        ]

    def _ensure_started(self) -> None:
        if not self._tasks and not self._closed:
            with contextlib.suppress(RuntimeError):  # no running loop yet: started later
                asyncio.get_running_loop()
                self.start()

    async def aclose(self, flush_s: float = 2.0) -> None:
        """Sends what is queued (for up to `flush_s`), stops counting here, disconnects."""
        if self._closed:
            return
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), flush_s)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *self._handler_tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            async with self.client.pipeline(transaction=False) as pipe:
                for show_id in self._reported:
                    pipe.hdel(self._key("presence", show_id), self.node_id)
                pipe.zrem(self._key("alive"), self.node_id)
                await pipe.execute()
        await self.client.aclose()

    async def abandon(self) -> None:
        """Stops without a word to Redis, as a node that dies would (tests)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.client.aclose()

    # --- rooms (RoomRelay) ---------------------------------------------------------------

    def send(self, room: Room, event: RoomEvent, sticky: bool) -> None:
        payload = {"t": event.type, "ts": event.ts, "d": event.data}
        if event.crew_only:
            payload["c"] = 1
        if event.to_user is not None:
            payload["u"] = event.to_user
        if sticky:
            payload["s"] = 1
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        sticky_type = event.type if sticky else ""
        self._enqueue(_Event(room.show_id, text, sticky_type, next(self._numbers)))

    async def follow(self, room: Room) -> None:
        self._ensure_started()
        loading = self._loading.get(room.show_id)
        if loading is not None:  # another join is loading the room (not yet followed): wait
            await asyncio.shield(loading)
        followed = self._followed.get(room.show_id)
        if followed is not None:
            followed.idle_since = None
            return
        followed = _Followed(room)
        loading = asyncio.get_running_loop().create_future()
        self._loading[room.show_id] = loading
        try:
            await self._load(followed)
        except (RedisError, OSError) as exc:
            # The client gets what this node has; the room is loaded once Redis is back.
            self._lost(exc)
        finally:
            self._followed[room.show_id] = followed
            self._by_key[self._room_keys(room.show_id)[1].encode()] = room.show_id
            del self._loading[room.show_id]
            loading.set_result(None)
        await self._wake_reader()

    def presence(self, show_id: int) -> int | None:
        counted = self._present.get(show_id)
        if counted is None or self._hub is None:
            return None
        here = self._hub.listeners(show_id)
        return counted - self._reported.get(show_id, 0) + here

    def broadcast(self, op: str, body: dict[str, Any]) -> None:
        self.send_control("rooms", op, body)

    def following(self) -> list[int]:
        return list(self._followed)

    # --- the writer ----------------------------------------------------------------------

    def send_control(self, topic: str, op: str, body: dict[str, Any]) -> None:
        message = {"n": self.node_id, "t": topic, "o": op, "b": body}
        self._enqueue(_Message(json.dumps(message, ensure_ascii=False, separators=(",", ":"))))

    def _enqueue(self, item: _Event | _Message) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.error("bus: Redis unreachable, %d events dropped so far", self._dropped)
        self._pending.append(item)
        self._has_pending.set()
        self._drained.clear()
        self._ensure_started()

    async def _write_loop(self) -> None:
        failures = 0
        while True:
            if not self._pending:
                self._drained.set()
                self._has_pending.clear()
                await self._has_pending.wait()
                continue
            await self._ready.wait()
            batch = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
            try:
                results = await self._send_batch(batch)
            except (RedisError, OSError) as exc:
                # Sent again once Redis is back, in order; what had gone through is skipped.
                self._lost(exc)
                await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
                continue
            failures = 0
            for item, result in zip(batch, results, strict=True):
                self._pending.popleft()
                if isinstance(result, Exception):
                    log.error("bus: Redis refused %r: %s", item, result)
                elif isinstance(item, _Event):
                    self._published[item.show_id] = int(result)
            if len(self._published) > 10_000:
                self._published.clear()

    async def _send_batch(self, batch: list[_Event | _Message]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            args: list[str | int]
            for item in batch:
                if isinstance(item, _Event):
                    keys = [
                        *self._room_keys(item.show_id),
                        self._key("room", item.show_id, "writers"),
                    ]
                    followed = self._followed.get(item.show_id)
                    known = max(
                        followed.room.seq if followed else 0, self._published.get(item.show_id, 0)
                    )
                    args = [item.payload, item.sticky_type, HISTORY, ROOM_TTL_S, known]
                    args += [self._writer, item.number]
                    await self._publish(keys=keys, args=args, client=pipe)
                else:
                    pipe.publish(self._key("control"), item.payload)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

    # --- the reader ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        failures = 0
        while True:
            try:
                if self._stale:
                    await self._resume()
                self._forget_idle()
                streams: dict[Any, Any] = {self._key("wake", self.node_id): self._wake_id}
                for show_id, followed in self._followed.items():
                    if followed.loaded:
                        streams[self._room_keys(show_id)[1]] = f"{followed.room.seq}-0"
                reply: Any = await self.client.xread(streams, count=1000, block=BLOCK_MS)
            except (RedisError, OSError) as exc:
                self._lost(exc)
                await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
                continue
            if failures:
                log.info("bus: reading again after %d failed attempts", failures)
            failures = 0
            wake = self._key("wake", self.node_id).encode()
            for key, entries in reply or []:
                if key == wake:
                    if entries:
                        self._wake_id = entries[-1][0].decode()
                    continue
                room_id = self._by_key.get(key)
                if room_id is None:
                    continue
                target = self._followed.get(room_id)
                if target is not None and target.loaded:
                    self._deliver(target, entries)

    def _deliver(self, followed: _Followed, entries: _Entries) -> None:
        room = followed.room
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-", 1)[0])
            if seq <= room.seq:
                continue
            if seq != room.seq + 1:
                log.warning(
                    "bus: room %s missed events %d-%d; loading it again",
                    room.show_id,
                    room.seq + 1,
                    seq - 1,
                )
                followed.loaded, followed.resync, self._stale = False, True, True
                return
            payload = fields[b"e"].decode()
            event, sticky = _decode(seq, payload)
            if sticky:
                followed.sticky[event.type] = f"{seq} {payload}"
            room.deliver(event, sticky)

    async def _load(self, followed: _Followed) -> None:
        room = followed.room
        seq_key, events_key, state_key = self._room_keys(room.show_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(seq_key)
            pipe.hgetall(state_key)
            pipe.xrevrange(events_key, count=HISTORY)
            seq_raw, state_raw, entries = await pipe.execute()
        history = [
            _decode(int(entry_id.split(b"-", 1)[0]), fields[b"e"].decode())[0]
            for entry_id, fields in reversed(entries)
        ]
        room.history.clear()
        room.history.extend(history)
        room.seq = max(int(seq_raw or 0), history[-1].seq if history else 0)
        room.state = {}
        followed.sticky = {}
        for type_raw, value in state_raw.items():
            seq_text, payload = value.decode().split(" ", 1)
            event, _ = _decode(int(seq_text), payload)
            room.state[type_raw.decode()] = event.as_json()
            followed.sticky[type_raw.decode()] = value.decode()
        room.chat_version += 1  # what a welcome cached of the chat may be stale
        followed.loaded = True

    async def _resume(self) -> None:
        """After Redis failed: puts back what it may have lost, loads what is to be loaded."""
        resumed = set()
        for show_id, followed in list(self._followed.items()):
            if not followed.loaded:
                await self._load(followed)
                if followed.resync:
                    followed.resync = False
                    for client in list(followed.room.clients.values()):
                        client.close(CLOSE_TOO_SLOW, "events were missed: reconnect with since")
                continue
            seq_key, _, state_key = self._room_keys(show_id)
            pairs = [part for item in followed.sticky.items() for part in item]
            resume: list[str | int] = [followed.room.seq, *pairs]
            await self._resume_script(keys=[seq_key, state_key], args=resume)
            resumed.add(show_id)
        for show_id, seq in list(self._published.items()):
            if show_id not in resumed:
                seq_key, _, state_key = self._room_keys(show_id)
                await self._resume_script(keys=[seq_key, state_key], args=[seq])
        self._stale = False
        if not self._ready.is_set():
            log.info("bus: Redis is back; %d rooms resumed", len(resumed))
        self._ready.set()

    def _lost(self, exc: BaseException) -> None:
        if self._ready.is_set():
            log.warning("bus: Redis unreachable (%s); retrying", exc)
        self._ready.clear()
        self._stale = True

    async def _wake_reader(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            key = self._key("wake", self.node_id)
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {"w": "1"}, maxlen=1, approximate=False)
                pipe.expire(key, 86400)
                await pipe.execute()

    def _forget_idle(self) -> None:
        now = self._clock.monotonic()
        keep = self._hub.keep if self._hub is not None else (lambda show_id: False)
        for show_id, followed in list(self._followed.items()):
            if followed.room.clients or keep(show_id):  # keep: the studio counts its reactions
                followed.idle_since = None
            elif followed.idle_since is None:
                followed.idle_since = now
            elif now - followed.idle_since > UNFOLLOW_AFTER_S and show_id not in self._loading:
                del self._followed[show_id]
                self._by_key.pop(self._room_keys(show_id)[1].encode(), None)

    # --- presence ------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._beat()
            except (RedisError, OSError) as exc:
                self._present = {}
                log.debug("bus: presence not counted (%s)", exc)
            await asyncio.sleep(self._heartbeat_s)

    async def _beat(self) -> None:
        hub = self._hub
        if hub is None:
            return
        now = self._clock.now().timestamp()
        counts = {room.show_id: len(room.clients) for room in hub.rooms() if room.clients}
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key("alive"), {self.node_id: now + self._node_ttl_s})
            for show_id, count in counts.items():
                key = self._key("presence", show_id)
                pipe.hset(key, self.node_id, count)
                pipe.expire(key, int(self._node_ttl_s * 10))
            for show_id in self._reported.keys() - counts.keys():
                pipe.hdel(self._key("presence", show_id), self.node_id)
            await pipe.execute()
        self._reported = counts
        shows = sorted(counts.keys() | self._followed.keys())
        if not shows:
            self._present = {}
            return
        keys = [self._key("alive"), *(self._key("presence", s) for s in shows)]
        sums = await self._presence_script(keys=keys, args=[now])
        self._present = {show_id: int(total) for show_id, total in zip(shows, sums, strict=True)}

    async def count(self, show_ids: list[int]) -> dict[int, int]:
        """Connections to each room summed over the live nodes, read now (tests, reports)."""
        if not show_ids:
            return {}
        now = self._clock.now().timestamp()
        keys = [self._key("alive"), *(self._key("presence", s) for s in show_ids)]
        sums = await self._presence_script(keys=keys, args=[now])
        return {show_id: int(total) for show_id, total in zip(show_ids, sums, strict=True)}

    # --- control -------------------------------------------------------------------------

    async def _control_loop(self) -> None:
        failures = 0
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._key("control"))
                failures = 0
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                log.debug("bus: control channel lost (%s)", exc)
                await asyncio.sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            if message["n"] == self.node_id:
                return
            handler = self.handlers.get(message["t"])
            if handler is None:
                return
            result = handler(str(message["o"]), dict(message["b"]))
        except (ValueError, KeyError, TypeError):
            log.exception("bus: a control message could not be handled: %r", raw[:200])
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)


def _decode(seq: int, payload: str) -> tuple[RoomEvent, bool]:
    body = json.loads(payload)
    event = RoomEvent(
        body["t"], seq, float(body["ts"]), body["d"], bool(body.get("c")), body.get("u")
    )
    return event, bool(body.get("s"))


__all__ = ["Channel", "RedisBus"]
