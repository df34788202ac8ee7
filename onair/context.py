"""What the app factory builds once and every request shares: settings, clock, database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from onair.clock import Clock
from onair.cluster.node import ClusterNode
from onair.licensing.service import Licensing
from onair.licensing.territories import AccountTerritories
from onair.live.registry import Stations
from onair.live.station import StationSettings
from onair.media.webrtc import WebRtcService
from onair.ratelimit import RateLimiter
from onair.restream.service import restream_settings
from onair.rooms.hub import RoomHub
from onair.settings import Settings
from onair.shows.browse.service import TrendingBoard
from onair.shows.follows.notifications import NotificationHub, Notifier


@dataclass
class Limiters:
    signup: RateLimiter
    login: RateLimiter
    hand_raise: RateLimiter
    chat: RateLimiter
    reaction: RateLimiter
    song_request: RateLimiter
    report: RateLimiter
    follow: RateLimiter
    login_failure: RateLimiter
    """Counts wrong passwords per account: an account out of tokens is locked out."""


@dataclass
class OnAir:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    limiters: Limiters = field(init=False)
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
        self.rooms = RoomHub(self.clock)
        self.trending = TrendingBoard(self.clock)
        self.notifications = NotificationHub()
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
        if self.settings.redis_url:
            self.cluster = ClusterNode(self.settings, self.stations, self.sessions)
        s = self.settings
        self.limiters = Limiters(
            signup=RateLimiter(
                self.clock, burst=s.signup_per_hour, per_seconds=3600, name="sign-ups"
            ),
            login=RateLimiter(self.clock, burst=s.login_per_minute, per_seconds=60, name="logins"),
            hand_raise=RateLimiter(
                self.clock, burst=s.hand_raises_per_minute, per_seconds=60, name="call-ins"
            ),
            chat=RateLimiter(
                self.clock, burst=s.chat_burst, per_seconds=s.chat_per_seconds, name="messages"
            ),
            reaction=RateLimiter(
                self.clock, burst=s.reactions_per_10s, per_seconds=10, name="reactions"
            ),
            song_request=RateLimiter(
                self.clock, burst=s.requests_per_10min, per_seconds=600, name="song requests"
            ),
            report=RateLimiter(
                self.clock, burst=s.reports_per_hour, per_seconds=3600, name="reports"
            ),
            follow=RateLimiter(
                self.clock, burst=s.follows_per_hour, per_seconds=3600, name="follows"
            ),
            login_failure=RateLimiter(
                self.clock,
                burst=s.login_failures_allowed,
                per_seconds=s.login_lockout_minutes * 60,
                name="failed log-ins",
                lockout_s=s.login_lockout_minutes * 60,
            ),
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
