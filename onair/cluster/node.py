"""This node among several: its heartbeat, the leases of the studios it runs, placing new
studios, taking over shows whose node died, and draining.

Everything runs from one loop per node, every `TICK_S`: renew the leases of the studios here
(a studio whose lease could not be renewed in time is stopped at once), save their playheads,
report the load, then look at the shows the database says are live and no node holds: a show
placed on this node is started here; an orphan (its node died) is taken by the least loaded
node at once, or by any node once it has been an orphan for `ORPHAN_GRACE_S` (the lease's SET NX
picks one). Commands between nodes (start a show placed on you, end a show, read its queue
again) go over a Redis channel per node; the loop is the fallback for a command missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.cluster import playhead
from onair.cluster.lease import LEASE_MS, Leases
from onair.cluster.load import CpuMeter, NodeLoad, least_loaded
from onair.cluster.models import ShowPlayhead
from onair.live.registry import Stations
from onair.settings import Settings
from onair.shows.models import Show, ShowStatus

log = logging.getLogger("onair.cluster")

TICK_S = 0.5
HEARTBEAT_MS = 3000
"""A node missing from the heartbeats this long is gone."""
PLAYHEAD_EVERY_S = 1.0
ORPHAN_GRACE_S = 2.0
PLACEMENT_MS = 10_000
"""How long a show placed on a node waits for it before any node may take it."""
PLACE_WAIT_S = 6.0
"""How long going live waits for the chosen node's studio before starting it here instead."""
STOP_WAIT_S = 5.0
ENDED = "-ended-"
"""The placement of a show whose studio was stopped because it ended."""
LAPSE_S = LEASE_MS / 1000 * 0.75
"""A studio whose lease was last renewed this long ago stops itself: its lease may expire
before the next renewal, and another node would then run the show too."""


class OwnerUnreachable(Exception):
    """The show is live but its owner cannot be reached now (it died, or none holds it yet)."""


@dataclass(frozen=True)
class Keys:
    prefix: str

    def node(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}nodes"

    def drain(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}:drain"

    def commands(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}:commands"

    def placed(self, show_id: int) -> str:
        return f"{self.prefix}show:{show_id}:placed"

    def reserved(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}:reserved"


async def list_nodes(redis: Redis, keys: Keys) -> list[NodeLoad]:
    """The nodes whose heartbeat is fresh (the stale are forgotten)."""
    ids = sorted(
        m.decode() if isinstance(m, bytes) else str(m) for m in await redis.smembers(keys.nodes)
    )
    if not ids:
        return []
    raws = await redis.mget([keys.node(i) for i in ids])
    found: list[NodeLoad] = []
    for node_id, raw in zip(ids, raws, strict=True):
        load = NodeLoad.from_json(raw) if raw is not None else None
        if load is None:
            await redis.srem(keys.nodes, node_id)
            continue
        found.append(load)
    return found


RESERVE = """
-- KEYS: each candidate node's reservations (a sorted set of shows, scored by when they lapse)
-- ARGV: now (ms), how long a reservation holds (ms), the show, then each candidate's score
-- The candidate whose score plus its reservations still holding is the lowest (the first of
-- equals) is reserved for the show and its number returned. One script, so placements made
-- at once (scheduled shows starting on the hour) spread out, where each alone would pick the
-- node whose heartbeat looked idlest.
local now, hold, show = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local best, lowest = 0, nil
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local score = tonumber(ARGV[3 + i]) + redis.call('ZCARD', key)
  if lowest == nil or score < lowest - 0.0005 then
    best, lowest = i, score
  end
end
redis.call('ZADD', KEYS[best], now + hold, show)
redis.call('PEXPIRE', KEYS[best], hold)
return best
"""


async def reserve_least_loaded(
    redis: Redis, keys: Keys, show_id: int, nodes: list[NodeLoad]
) -> NodeLoad | None:
    """`least_loaded`, counting the studios other placements reserved since the nodes' last
    heartbeats, and reserving the chosen node for `show_id` (until its studio runs and its
    heartbeat counts it, or PLACEMENT_MS)."""
    open_ = sorted((n for n in nodes if not n.draining), key=lambda n: n.node_id)
    if not open_:
        return None
    keys_ = [keys.reserved(n.node_id) for n in open_]
    args = [int(time.time() * 1000), PLACEMENT_MS, show_id, *(round(n.score, 3) for n in open_)]
    chosen = int(await redis.eval(RESERVE, len(keys_), *keys_, *args))
    return open_[chosen - 1]


async def set_draining(redis: Redis, keys: Keys, node_id: str, draining: bool) -> None:
    if draining:
        await redis.set(keys.drain(node_id), "1")
    else:
        await redis.delete(keys.drain(node_id))


class ClusterNode:
    """Implements `onair.live.registry.Cluster` for one node."""

    def __init__(
        self,
        settings: Settings,
        stations: Stations,
        sessions: async_sessionmaker[AsyncSession],
        node_id: str,
    ) -> None:
        self.node_id = node_id
        """The same id as the bus's (onair/context.py picks it once)."""
        self.url = (settings.node_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        source_host = urlsplit(self.url).hostname or settings.host
        self.source = f"{source_host}:{settings.source_port}" if settings.source_port else ""
        """Where other nodes forward sources for the shows here (the host of ONAIR_NODE_URL)."""
        self.keys = Keys(settings.redis_prefix)
        self.redis: Redis = Redis.from_url(settings.redis_url)
        self.leases = Leases(self.redis, settings.redis_prefix, self.node_id)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=2.0, read=None, write=10.0, pool=5.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        )
        self.draining = False
        self._leaving = False
        """Shutting down: takes no studios, and its own go to other nodes."""
        self._stations = stations
        self._sessions = sessions
        self._cpu = CpuMeter()
        self._renewed: dict[int, float] = {}
        self._orphans: dict[int, float] = {}
        self._drain_marks: dict[int, int] = {}
        self._playheads_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._starting: set[int] = set()
        self._starts: set[asyncio.Task[None]] = set()
        """Studios starting beside the loop (kept until done, so none is collected)."""

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._stations.cluster = self
        self.draining = bool(await self.redis.exists(self.keys.drain(self.node_id)))
        await self._heartbeat()
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"cluster-{self.node_id}"),
            asyncio.create_task(self._listen(), name=f"cluster-commands-{self.node_id}"),
        ]
        log.info("node in the cluster node=%s url=%s", self.node_id, self.url)

    async def aclose(self) -> None:
        tasks = [*self._tasks, *self._starts]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.redis.delete(self.keys.node(self.node_id))
            await self.redis.srem(self.keys.nodes, self.node_id)
        await self.http.aclose()
        await self.redis.aclose()

    # --- registry.Cluster --------------------------------------------------------------

    async def place(self, show_id: int) -> None:
        if await self.leases.owner(show_id) is not None:
            return
        target = await reserve_least_loaded(
            self.redis, self.keys, show_id, await list_nodes(self.redis, self.keys)
        )
        if target is None or target.node_id == self.node_id:
            await self._start_here(show_id)
            return
        await self.redis.set(self.keys.placed(show_id), target.node_id, px=PLACEMENT_MS)
        await self._tell(target.node_id, "start", show_id)
        log.info("show placed show=%s node=%s score=%.2f", show_id, target.node_id, target.score)
        deadline = time.monotonic() + PLACE_WAIT_S
        while time.monotonic() < deadline:
            if await self.leases.owner(show_id) is not None:
                return
            await asyncio.sleep(0.05)
        log.warning("placed show did not start show=%s node=%s", show_id, target.node_id)
        await self.redis.delete(self.keys.placed(show_id))
        await self._start_here(show_id)

    async def stop_elsewhere(self, show_id: int) -> None:
        owner = await self.leases.owner(show_id)
        if owner is None or owner == self.node_id:
            return
        await self._tell(owner, "stop", show_id)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:  # polled: the owner is another process
            if await self.leases.owner(show_id) != owner:
                return
            await asyncio.sleep(0.05)

    async def queue_changed_elsewhere(self, show_id: int) -> None:
        owner = await self.leases.owner(show_id)
        if owner is not None and owner != self.node_id:
            await self._tell(owner, "sync_queue", show_id)

    async def remove_user_elsewhere(
        self, show_id: int, user_id: int, reason: str, *, hang_up: bool
    ) -> None:
        owner = await self.leases.owner(show_id)
        if owner is not None and owner != self.node_id:
            extra = {"user_id": user_id, "reason": reason, "hang_up": hang_up}
            await self._tell(owner, "remove_user", show_id, **extra)

    async def stopped_here(self, show_id: int, *, ended: bool) -> None:
        self._renewed.pop(show_id, None)
        self._drain_marks.pop(show_id, None)
        if ended:
            # Until the show is marked ended in the database (just after this), no node may
            # take it for an orphan: the placement names no node.
            await self.redis.set(self.keys.placed(show_id), ENDED, px=PLACEMENT_MS)
            async with self._sessions() as db:
                await db.execute(delete(ShowPlayhead).where(ShowPlayhead.show_id == show_id))
                await db.commit()
        await self.leases.release(show_id)
        await self._heartbeat()

    async def leave(self) -> None:
        self._leaving = True
        await self._heartbeat()  # says it drains: no node places a studio here now

    async def closing(self, show_id: int) -> None:
        """Hands the show to the least loaded other node, as a drain does."""
        await self._save_playhead(show_id)
        target = least_loaded(await list_nodes(self.redis, self.keys), excluding=self.node_id)
        if target is not None:
            await self.redis.set(self.keys.placed(show_id), target.node_id, px=PLACEMENT_MS)
            log.info("leaving: show moves show=%s to=%s", show_id, target.node_id)

    # --- what the proxy asks -----------------------------------------------------------

    async def route(self, show_id: int) -> str | None:
        """The URL of the node that runs the show's studio when it is another node; None when
        this node should answer (it runs the studio, or the show is not live)."""
        owner = await self.leases.owner(show_id)
        if owner == self.node_id:
            if self._stations.get(show_id) is None:  # its studio is starting here
                raise OwnerUnreachable(f"show {show_id} is starting here")
            return None
        if owner is None:
            if show_id in self._starting or await self._is_live(show_id):
                raise OwnerUnreachable(f"show {show_id} is between nodes")
            return None
        raw = await self.redis.get(self.keys.node(owner))
        load = NodeLoad.from_json(raw) if raw is not None else None
        if load is None:
            raise OwnerUnreachable(f"node {owner} of show {show_id} is gone")
        return load.url

    async def source_address(self, show_id: int) -> tuple[str, int] | None:
        """Where a DJ's source connection for the show goes when another node runs its studio
        (that node's source ingest); None when this node should answer it."""
        owner = await self.leases.owner(show_id)
        if owner is None or owner == self.node_id:
            return None
        raw = await self.redis.get(self.keys.node(owner))
        load = NodeLoad.from_json(raw) if raw is not None else None
        if load is None or not load.source:
            return None
        host, _, port = load.source.rpartition(":")
        return (host.strip("[]"), int(port)) if host and port.isdigit() else None

    async def started(self, show_id: int, wait_s: float) -> None:
        """Returns once the show's studio is no longer starting here (or after `wait_s`)."""
        deadline = time.monotonic() + wait_s
        while show_id in self._starting and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    # --- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            for step in (self._renew, self._save_playheads, self._heartbeat, self._watch):
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("cluster step failed node=%s step=%s", self.node_id, step)

    async def _renew(self) -> None:
        now = time.monotonic()
        for show_id in list(self._starting):  # held while the studio starts, however long
            with contextlib.suppress(Exception):
                await self.leases.renew(show_id)
        for show_id in self._stations.here():
            renewed = False
            try:
                renewed = await self.leases.renew(show_id)
            except Exception:
                log.exception("lease renewal failed show=%s", show_id)
            if renewed:
                self._renewed[show_id] = now
                continue
            lapsed = now - self._renewed.get(show_id, now) >= LAPSE_S
            if not renewed and (lapsed or await self._held_by_other(show_id)):
                log.error("lease lost: studio stopped here show=%s node=%s", show_id, self.node_id)
                await self._stations.stop_here(show_id, ended=False, handover=True)

    async def _held_by_other(self, show_id: int) -> bool:
        with contextlib.suppress(Exception):
            owner = await self.leases.owner(show_id)
            return owner is not None and owner != self.node_id
        return False

    async def _save_playheads(self) -> None:
        now = time.monotonic()
        if now - self._playheads_at < PLAYHEAD_EVERY_S:
            return
        self._playheads_at = now
        for show_id in self._stations.here():
            await self._save_playhead(show_id)

    async def _save_playhead(self, show_id: int) -> None:
        station = self._stations.get(show_id)
        if station is None:
            return
        async with self._sessions() as db:
            await playhead.save(db, show_id, self.node_id, station.playhead())

    async def _heartbeat(self) -> None:
        drain = bool(await self.redis.exists(self.keys.drain(self.node_id)))
        self.draining = drain or self._leaving
        stations = [s for s in map(self._stations.get, self._stations.here()) if s is not None]
        load = NodeLoad(
            node_id=self.node_id,
            url=self.url,
            studios=len(stations) + len(self._starting),
            listeners=sum(s.listeners() for s in stations),
            cpu=self._cpu.read(),
            draining=self.draining,
            source=self.source,
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.node(self.node_id), load.to_json(), px=HEARTBEAT_MS)
            pipe.sadd(self.keys.nodes, self.node_id)
            await pipe.execute()

    async def _watch(self) -> None:
        async with self._sessions() as db:
            live = set(await db.scalars(select(Show.id).where(Show.status == ShowStatus.live)))
        here = set(self._stations.here())
        for show_id in here - live:  # ended through a node that could not reach this one
            log.info("show no longer live: studio stopped show=%s", show_id)
            await self._stations.stop_here(show_id, ended=True)
        if self.draining and not self._leaving:  # a node leaving hands its shows over itself
            await self._drain(here & live)
        elsewhere = sorted(live - here - self._starting)
        self._orphans = {k: v for k, v in self._orphans.items() if k in elsewhere}
        if not elsewhere:
            return
        owners = await self.redis.mget([self.leases.key(i) for i in elsewhere])
        placed = await self.redis.mget([self.keys.placed(i) for i in elsewhere])
        nodes: list[NodeLoad] | None = None
        for show_id, owner, target in zip(elsewhere, owners, placed, strict=True):
            if owner is not None:
                self._orphans.pop(show_id, None)
                continue
            if target is not None:
                if _text(target) == self.node_id:
                    self._start_soon(show_id)
                continue
            if self.draining:
                continue
            first_seen = self._orphans.setdefault(show_id, time.monotonic())
            if nodes is None:
                nodes = await list_nodes(self.redis, self.keys)
            chosen = least_loaded(nodes)
            mine = chosen is None or chosen.node_id == self.node_id
            if mine or time.monotonic() - first_seen >= ORPHAN_GRACE_S:
                log.warning(
                    "taking over a show no node runs show=%s node=%s", show_id, self.node_id
                )
                self._start_soon(show_id)

    def _start_soon(self, show_id: int) -> None:
        """Starts the studio beside the loop, which goes on renewing the other leases."""
        if show_id in self._starting:
            return

        async def start() -> None:
            try:
                await self._start_here(show_id)
            except Exception:
                log.exception("studio failed to start show=%s node=%s", show_id, self.node_id)

        task = asyncio.create_task(start(), name=f"cluster-start-{show_id}")
        self._starts.add(task)
        task.add_done_callback(self._starts.discard)

    async def _start_here(self, show_id: int) -> None:
        if self._leaving or show_id in self._starting or self._stations.get(show_id) is not None:
            return
        if not await self.leases.acquire(show_id):
            return  # another node runs it
        self._starting.add(show_id)
        try:
            await self._heartbeat()  # counted at once: the next placement sees it
            await self.redis.zrem(self.keys.reserved(self.node_id), show_id)  # not twice
            async with self._sessions() as db:
                resume = await playhead.resume_point(db, show_id)
            await self._stations.start_here(show_id, resume)
        except Exception:
            await self.leases.release(show_id)
            raise
        finally:
            self._starting.discard(show_id)
        self._renewed[show_id] = time.monotonic()
        await self.redis.delete(self.keys.placed(show_id))
        await self._heartbeat()
        at = f"{resume.track.start_s:.1f} s into track {resume.track.track_id}" if resume else "top"
        log.info("studio runs here show=%s node=%s from=%s", show_id, self.node_id, at)

    async def _drain(self, here: set[int]) -> None:
        """Moves each studio here to another node once a new song has started (a song
        boundary), or at once when no song is on air."""
        for show_id in sorted(here):
            station = self._stations.get(show_id)
            if station is None:
                continue
            mark = self._drain_marks.setdefault(show_id, station.songs_started)
            idle = station.studio.deck.now_playing is None and station.studio.deck.live is None
            if station.songs_started == mark and not idle:
                continue
            target = least_loaded(await list_nodes(self.redis, self.keys), excluding=self.node_id)
            if target is None:
                continue  # nowhere to go: it stays until a node can take it
            await self._save_playhead(show_id)
            await self.redis.set(self.keys.placed(show_id), target.node_id, px=PLACEMENT_MS)
            log.info("draining: show moves show=%s to=%s", show_id, target.node_id)
            await self._stations.stop_here(show_id, ended=False, handover=True)
            await self._tell(target.node_id, "start", show_id)

    async def _is_live(self, show_id: int) -> bool:
        async with self._sessions() as db:
            status = await db.scalar(select(Show.status).where(Show.id == show_id))
        return status is ShowStatus.live

    # --- commands between nodes --------------------------------------------------------

    async def _tell(self, node_id: str, do: str, show_id: int, **extra: Any) -> None:
        message = json.dumps({**extra, "do": do, "show_id": show_id, "from": self.node_id})
        await self.redis.publish(self.keys.commands(node_id), message)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.commands(self.node_id))
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            await self._command(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster commands lost their connection node=%s", self.node_id)
                await asyncio.sleep(1.0)

    async def _command(self, raw: Any) -> None:
        try:
            message = json.loads(raw)
            do, show_id = str(message["do"]), int(message["show_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("malformed cluster command node=%s: %r", self.node_id, raw)
            return
        if do == "remove_user":
            await self._remove_user(show_id, message)
            return
        actions: dict[str, Callable[[int], Awaitable[None]]] = {
            "start": self._start_placed,
            "stop": self._stop_ended,
            "sync_queue": self._stations.queue_changed,
        }
        action = actions.get(do)
        if action is None:
            log.warning("unknown cluster command node=%s do=%s", self.node_id, do)
            return
        try:
            await action(show_id)
        except Exception:
            log.exception("cluster command failed node=%s do=%s show=%s", self.node_id, do, show_id)

    async def _remove_user(self, show_id: int, message: dict[str, Any]) -> None:
        try:
            user_id, reason = int(message["user_id"]), str(message["reason"])
            hang_up = bool(message.get("hang_up", False))
        except (ValueError, KeyError, TypeError):
            log.warning("malformed cluster command node=%s: %r", self.node_id, message)
            return
        try:
            await self._stations.remove_user_here(show_id, user_id, reason, hang_up=hang_up)
        except Exception:
            log.exception("could not remove user=%s show=%s", user_id, show_id)

    async def _start_placed(self, show_id: int) -> None:
        if _text(await self.redis.get(self.keys.placed(show_id))) == self.node_id:
            await self._start_here(show_id)

    async def _stop_ended(self, show_id: int) -> None:
        await self._stations.stop_here(show_id, ended=True)


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)
