"""What the app factory builds once and every request shares: settings, clock, database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from onair.clock import Clock
from onair.live.registry import Stations
from onair.live.station import StationSettings
from onair.media.webrtc import WebRtcService
from onair.ratelimit import RateLimiter
from onair.rooms.hub import RoomHub
from onair.settings import Settings


@dataclass
class Limiters:
    signup: RateLimiter
    login: RateLimiter
    hand_raise: RateLimiter


@dataclass
class OnAir:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    limiters: Limiters = field(init=False)
    rooms: RoomHub = field(init=False)
    stations: Stations = field(init=False)

    def __post_init__(self) -> None:
        self.rooms = RoomHub(self.clock)
        self.stations = Stations(
            self.sessions,
            self.rooms,
            WebRtcService(),
            StationSettings(
                crossfade_s=self.settings.crossfade_s,
                target_lufs=self.settings.target_lufs,
                max_on_air=self.settings.max_on_air,
            ),
        )
        s = self.settings
        self.limiters = Limiters(
            signup=RateLimiter(
                self.clock, burst=s.signup_per_hour, per_seconds=3600, name="sign-ups"
            ),
            login=RateLimiter(self.clock, burst=s.login_per_minute, per_seconds=60, name="logins"),
            hand_raise=RateLimiter(
                self.clock, burst=s.hand_raises_per_minute, per_seconds=60, name="call-ins"
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
