"""Every live show whose studio runs on this node.

With several nodes (ONAIR_REDIS_URL) a `Cluster` decides where a show's studio runs: `start`,
`stop` and `queue_changed` then reach the node that runs it, and the `*_here` methods are what
that node does. Without one, every studio runs here and `resume` restarts them at startup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.live.station import LiveShow, Resume, StationSettings
from onair.media.feed import ProgramFeed
from onair.media.webrtc import ShowMedia, WebRtcService
from onair.rooms.hub import RoomHub
from onair.shows.models import Show, ShowStatus
from onair.stage.service import voice_id_of

log = logging.getLogger("onair.live")


class Cluster(Protocol):
    """Where studios run when there are several nodes (onair/cluster/node.py)."""

    async def place(self, show_id: int) -> None:
        """Starts the show's studio on the least loaded node, unless one already runs it."""

    async def stop_elsewhere(self, show_id: int) -> None:
        """Ends the show on the node that runs its studio."""

    async def queue_changed_elsewhere(self, show_id: int) -> None:
        """Tells the node that runs the show's studio to read its queue again."""

    async def remove_user_elsewhere(
        self, show_id: int, user_id: int, reason: str, *, hang_up: bool
    ) -> None:
        """Tells the node that runs the show's studio to take the user off its stage."""

    async def stopped_here(self, show_id: int, *, ended: bool) -> None:
        """This node no longer runs the show (its lease goes; an ended show's playhead too)."""

    async def leave(self) -> None:
        """This node shuts down: it takes no more studios."""

    async def closing(self, show_id: int) -> None:
        """This node shuts down: the show's playhead is saved for the node that takes it."""


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
        self.cluster: Cluster | None = None
        """Set by the app factory when there are several nodes."""

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

    async def start(self, show_id: int) -> LiveShow | None:
        """Starts the show's studio: here, or with several nodes on the least loaded one (the
        studio is then None here)."""
        if self.cluster is None:
            return await self.start_here(show_id)
        await self.cluster.place(show_id)
        return self._live.get(show_id)

    async def start_here(self, show_id: int, resume: Resume | None = None) -> LiveShow:
        """Runs the show's studio on this node; `resume` when it takes over from another."""
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
                resume=resume,
            )
            await station.start()
            self._live[show_id] = station
            if resume is None:
                self._rooms.publish(show_id, "show.live", {"show_id": show_id})
            return station

    async def stop(self, show_id: int, *, ended: bool = True) -> None:
        """Stops the show's studio; `ended=False` when only this node stops (the show stays
        live, and its stage is kept for the studio that resumes it)."""
        if show_id not in self._live and self.cluster is not None and ended:
            await self.cluster.stop_elsewhere(show_id)
            return
        await self.stop_here(show_id, ended=ended)

    async def stop_here(self, show_id: int, *, ended: bool = True, handover: bool = False) -> None:
        """Stops the studio on this node; `handover` leaves the song on air's play-log row open
        for the node that resumes the show."""
        async with self._lock:
            station = self._live.pop(show_id, None)
        if station is None:
            return
        try:
            await self.webrtc.end_show(show_id)
            await station.stop(ended=ended, handover=handover)
        finally:
            if self.cluster is not None:
                await self.cluster.stopped_here(show_id, ended=ended)
        if ended:
            self._rooms.publish(show_id, "show.ended", {"show_id": show_id})

    def here(self) -> list[int]:
        """The shows whose studio runs on this node."""
        return list(self._live)

    async def remove_user(
        self, show_id: int, user_id: int, reason: str, *, hang_up: bool = False
    ) -> None:
        """Moderation took the user out of the show: off its stage and out of its call-in
        queue, and with `hang_up` their voice line closed, on the node that runs its studio."""
        if show_id not in self._live and self.cluster is not None:
            await self.cluster.remove_user_elsewhere(show_id, user_id, reason, hang_up=hang_up)
            return
        await self.remove_user_here(show_id, user_id, reason, hang_up=hang_up)

    async def remove_user_here(
        self, show_id: int, user_id: int, reason: str, *, hang_up: bool = False
    ) -> None:
        station = self._live.get(show_id)
        if station is not None:
            await station.stage.remove_user(user_id, reason)
        if hang_up:
            await self.webrtc.end_voice(show_id, voice_id_of(user_id))

    async def queue_changed(self, show_id: int) -> None:
        station = self._live.get(show_id)
        if station is not None:
            await station.sync_queue()
        elif self.cluster is not None:
            await self.cluster.queue_changed_elsewhere(show_id)

    async def resume(self) -> None:
        """Restarts the studios of shows that were live when this node last stopped (with
        several nodes the cluster takes over shows no node runs, so this does nothing)."""
        if self.cluster is not None:
            return
        async with self._sessions() as db:
            live = list(await db.scalars(select(Show.id).where(Show.status == ShowStatus.live)))
        for show_id in live:
            try:
                await self.start(show_id)
            except Exception:
                log.exception("could not resume show=%s", show_id)

    async def aclose(self) -> None:
        if self.cluster is not None:
            await self.cluster.leave()
        for show_id in list(self._live):
            if self.cluster is None:
                await self.stop_here(show_id, ended=False)
                continue
            try:
                await self.cluster.closing(show_id)
            except Exception:
                log.exception("could not save the playhead show=%s", show_id)
            await self.stop_here(show_id, ended=False, handover=True)
        await self.webrtc.aclose()
