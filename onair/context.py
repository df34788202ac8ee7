"""What the app factory builds once and every request shares: settings, clock, database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from onair.bus.redis_bus import RedisBus
from onair.clock import Clock
from onair.cluster.node import ClusterNode
from onair.licensing.service import Licensing
from onair.licensing.territories import AccountTerritories
from onair.live.registry import Stations
from onair.live.station import StationSettings
from onair.media.webrtc import WebRtcService
from onair.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from onair.restream.service import restream_settings
from onair.rooms.hub import RoomHub
from onair.settings import Settings
from onair.shows.browse.service import TrendingBoard
from onair.shows.follows.notifications import NotificationHub, Notifier


@dataclass
class Limiters:
    signup: Limiter
    login: Limiter
    hand_raise: Limiter
    chat: Limiter
    reaction: Limiter
    song_request: Limiter
    report: Limiter
    follow: Limiter
    login_failure: Limiter
    """Counts wrong passwords per account: an account out of tokens is locked out."""


@dataclass
class OnAir:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    limiters: Limiters = field(init=False)
    bus: RedisBus | None = field(init=False, default=None)
    """The bus shared by several nodes (ONAIR_REDIS_URL); None: this node alone."""
    rooms: RoomHub = field(init=False)
    notifications: NotificationHub = field(init=False)
    """Each user's open notification streams: the in-process bus, as `rooms` is for rooms."""
    notifier: Notifier = field(init=False)
    stations: Stations = field(init=False)
    cluster: ClusterNode | None = field(init=False, default=None)
    """This node among several (ONAIR_REDIS_URL); None on a node of its own."""
    trending: TrendingBoard = field(init=False)
    account_territories: AccountTerritories = field(init=False, default_factory=AccountTerritories)
    """What the territory guard last read of each session's account (licensing.geoblock)."""

    def __post_init__(self) -> None:
        s = self.settings
        # One id for this node, on the bus and in the cluster alike (picked once when unset).
        node_id = s.node_id or f"node-{secrets.token_hex(4)}"
        if s.redis_url:
            self.bus = RedisBus.from_url(
                s.redis_url, node_id=node_id, clock=self.clock, prefix=s.redis_prefix
            )
            self.rooms = RoomHub(self.clock, relay=self.bus)
            self.bus.attach(self.rooms)
            self.notifications = NotificationHub(relay=self.bus.channel("notifications"))
        else:
            self.rooms = RoomHub(self.clock)
            self.notifications = NotificationHub()
        self.trending = TrendingBoard(self.clock)
        self.notifier = Notifier(self.sessions, self.clock, self.notifications)
        self.stations = Stations(
            self.sessions,
            self.rooms,
            WebRtcService(),
            StationSettings(
                crossfade_s=self.settings.crossfade_s,
                target_lufs=self.settings.target_lufs,
                max_on_air=self.settings.max_on_air,
                sample_every_s=self.settings.analytics_sample_s,
                sample_heartbeat_s=self.settings.analytics_heartbeat_s,
                recordings=self.settings.recordings_path,
                recording_segment_s=self.settings.recording_segment_s,
                licensing=Licensing.of(self.settings, self.clock),
                restream=restream_settings(self.settings),
            ),
        )
        self.rooms.keep = lambda show_id: self.stations.get(show_id) is not None
        if self.settings.redis_url:
            self.cluster = ClusterNode(self.settings, self.stations, self.sessions, node_id)
        limiter = self._limiter
        self.limiters = Limiters(
            signup=limiter(s.signup_per_hour, 3600, "sign-ups"),
            login=limiter(s.login_per_minute, 60, "logins"),
            hand_raise=limiter(s.hand_raises_per_minute, 60, "call-ins"),
            chat=limiter(s.chat_burst, s.chat_per_seconds, "messages"),
            reaction=limiter(s.reactions_per_10s, 10, "reactions"),
            song_request=limiter(s.requests_per_10min, 600, "song requests"),
            report=limiter(s.reports_per_hour, 3600, "reports"),
            follow=limiter(s.follows_per_hour, 3600, "follows"),
            login_failure=limiter(
                s.login_failures_allowed,
                s.login_lockout_minutes * 60,
                "failed log-ins",
                lockout_s=s.login_lockout_minutes * 60,
            ),
        )

    def _limiter(
        self, burst: int, per_seconds: float, name: str, *, lockout_s: float | None = None
    ) -> Limiter:
        """In memory on one node; in Redis, so that it holds across nodes, with a bus."""
        if self.bus is None:
            return RateLimiter(
                self.clock, burst=burst, per_seconds=per_seconds, name=name, lockout_s=lockout_s
            )
        return RedisRateLimiter(
            self.bus.client,
            self.clock,
            burst=burst,
            per_seconds=per_seconds,
            name=name,
            lockout_s=lockout_s,
            prefix=self.bus.prefix,
        )


def get_onair(request: Request) -> OnAir:
    onair: OnAir = request.app.state.onair
    return onair


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_onair(request).sessions() as session:
        yield session


Ctx = Annotated[OnAir, Depends(get_onair)]
Db = Annotated[AsyncSession, Depends(get_db)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
