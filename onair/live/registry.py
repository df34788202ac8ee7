"""Every live show whose studio runs on this node."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.live.station import LiveShow, StationSettings
from onair.media.feed import ProgramFeed
from onair.media.webrtc import ShowMedia, WebRtcService
from onair.rooms.hub import RoomHub
from onair.shows.models import Show, ShowStatus

log = logging.getLogger("onair.live")


class Stations:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rooms: RoomHub,
        webrtc: WebRtcService,
        options: StationSettings | None = None,
    ) -> None:
        self._sessions = sessions
        self._rooms = rooms
        self.webrtc = webrtc
        self._options = options or StationSettings()
        self._live: dict[int, LiveShow] = {}
        self._lock = asyncio.Lock()

    def get(self, show_id: int) -> LiveShow | None:
        return self._live.get(show_id)

    def live(self) -> list[LiveShow]:
        """The shows whose studio runs here now (read by /metrics)."""
        return list(self._live.values())

    def feed(self, show_id: int) -> ProgramFeed | None:
        station = self._live.get(show_id)
        return station.feed if station else None

    async def media(self, show_id: int) -> ShowMedia | None:
        station = self._live.get(show_id)
        return station.media() if station else None

    async def start(self, show_id: int) -> LiveShow:
        async with self._lock:
            station = self._live.get(show_id)
            if station is not None:
                return station
            station = LiveShow(
                show_id=show_id,
                sessions=self._sessions,
                rooms=self._rooms,
                webrtc_audience=self.webrtc.audience,
                end_voice=self.webrtc.end_voice,
                options=self._options,
            )
            await station.start()
            self._live[show_id] = station
            self._rooms.publish(show_id, "show.live", {"show_id": show_id})
            return station

    async def stop(self, show_id: int, *, ended: bool = True) -> None:
        """Stops the show's studio; `ended=False` when only this node stops (the show stays
        live, and its stage is kept for the studio that resumes it)."""
        async with self._lock:
            station = self._live.pop(show_id, None)
        if station is None:
            return
        await self.webrtc.end_show(show_id)
        await station.stop(ended=ended)
        if ended:
            self._rooms.publish(show_id, "show.ended", {"show_id": show_id})

    async def queue_changed(self, show_id: int) -> None:
        station = self._live.get(show_id)
        if station is not None:
            await station.sync_queue()

    async def resume(self) -> None:
        """Restarts the studios of shows that were live when this node last stopped."""
        async with self._sessions() as db:
            live = list(await db.scalars(select(Show.id).where(Show.status == ShowStatus.live)))
        for show_id in live:
            try:
                await self.start(show_id)
            except Exception:
                log.exception("could not resume show=%s", show_id)

    async def aclose(self) -> None:
        for show_id in list(self._live):
            await self.stop(show_id, ended=False)
        await self.webrtc.aclose()
