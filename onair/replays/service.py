"""Publishing replays: who may, what the licences allow, and the encoding in the background."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.accounts.models import User
from onair.catalog.models import Licence, Track
from onair.clock import Clock
from onair.errors import ApiError, error_body, forbidden, not_found
from onair.moderation import audit
from onair.replays import editing
from onair.replays.feed import episode_title
from onair.replays.models import Replay, ReplayKind, ReplayState
from onair.replays.recorder import RecordedSegment, read_recording, recording_dir
from onair.royalties.models import PlayLog
from onair.shows.models import Show, ShowStatus

log = logging.getLogger("onair.replays")


@dataclass(frozen=True)
class BlockingTrack:
    id: int
    title: str
    artists: tuple[str, ...]


class NotLicensedOnDemand(ApiError):
    """A full replay refused: these songs' licences do not allow on-demand use."""

    def __init__(self, tracks: list[BlockingTrack]) -> None:
        names = "; ".join(f"{', '.join(t.artists)} - {t.title}" for t in tracks)
        super().__init__(
            409,
            "not_licensed_on_demand",
            "a full replay needs every song's licence to allow on-demand play; "
            f"not licensed for it: {names}. A talk replay (music cut out) is still possible.",
        )
        self.tracks = tracks

    def body(self) -> dict[str, Any]:
        blocked = [{"id": t.id, "title": t.title, "artists": list(t.artists)} for t in self.tracks]
        return error_body(self.code, self.message, tracks=blocked)


def require_host(show: Show, user: User) -> None:
    """Publishing is the host's own decision (a moderator may only take a replay down)."""
    if show.host_id != user.id:
        raise forbidden("only the show's host can publish its replays")


def may_manage(show: Show, user: User | None) -> bool:
    return user is not None and (user.id == show.host_id or user.is_moderator)


async def plays_with_licences(db: AsyncSession, show_id: int) -> list[tuple[PlayLog, Track]]:
    stmt = (
        select(PlayLog, Track)
        .join(Track, Track.id == PlayLog.track_id)
        .where(PlayLog.show_id == show_id)
        .order_by(PlayLog.started_at)
    )
    return [(play, track) for play, track in (await db.execute(stmt)).all()]


async def blocking_tracks(db: AsyncSession, show_id: int, today: date) -> list[BlockingTrack]:
    """The songs played in the show whose licence does not allow on-demand use today: none on
    file, on-demand not granted, or outside the licence's dates."""
    stmt = (
        select(Track)
        .join(PlayLog, PlayLog.track_id == Track.id)
        .outerjoin(Licence, Licence.track_id == Track.id)
        .where(PlayLog.show_id == show_id)
        .where(
            Licence.id.is_(None)
            | Licence.on_demand_allowed.is_(False)
            | (Licence.starts_on.is_not(None) & (Licence.starts_on > today))
            | (Licence.ends_on.is_not(None) & (Licence.ends_on < today))
        )
        .distinct()
        .order_by(Track.id)
    )
    tracks = (await db.scalars(stmt)).unique().all()
    return [BlockingTrack(t.id, t.title, tuple(t.artists)) for t in tracks]


def played(play: PlayLog, track: Track) -> editing.Played:
    """A song's stretch of the program. The play log's end is taken generously: the later of
    the stop it noted and the start plus the seconds played, and a play never closed (the node
    stopped) is taken to have run the whole song."""
    start = play.started_at.timestamp()
    end = start + play.seconds_played
    if play.ended_at is not None:
        end = max(end, play.ended_at.timestamp())
    else:
        end = max(end, start + (track.duration_s or 0.0))
    artists = ", ".join(track.artists)
    return editing.Played(start, end, f"{artists} - {track.title}" if artists else track.title)


async def show_replays(db: AsyncSession, show: Show, viewer: User | None) -> list[Replay]:
    """The show's replays: everyone sees the ready ones, its host and moderators all."""
    stmt = select(Replay).where(Replay.show_id == show.id).order_by(Replay.kind)
    if not may_manage(show, viewer):
        stmt = stmt.where(Replay.state == ReplayState.ready)
    return list(await db.scalars(stmt))


async def host_replays(
    db: AsyncSession, host_id: int, limit: int = 100
) -> list[tuple[Replay, Show]]:
    """A host's ready replays, newest first (the host page and the podcast feed)."""
    stmt = (
        select(Replay, Show)
        .join(Show, Show.id == Replay.show_id)
        .where(Show.host_id == host_id, Replay.state == ReplayState.ready)
        .order_by(Replay.ready_at.desc(), Replay.id.desc())
        .limit(limit)
    )
    return [(replay, show) for replay, show in (await db.execute(stmt)).all()]


async def get_replay(db: AsyncSession, replay_id: int, viewer: User | None) -> tuple[Replay, Show]:
    """A replay anyone may see once ready; before that only its host and moderators."""
    replay = await db.get(Replay, replay_id)
    show = await db.get(Show, replay.show_id) if replay else None
    if replay is None or show is None:
        raise not_found("replay")
    if replay.state is not ReplayState.ready and not may_manage(show, viewer):
        raise not_found("replay")
    return replay, show


def chapters_of(replay: Replay) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(replay.chapters or "[]")
    return loaded


@dataclass
class PublishOptions:
    recorded_s: float
    blocked_by: list[BlockingTrack]


class Replays:
    """Publishes and encodes replays on this node; one encoding at a time, so a node running
    live studios gives them at most one core's worth of competition."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        recordings: Path,
        replays: Path,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.recordings = recordings
        self.replays = replays
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._one_at_a_time = asyncio.Semaphore(1)

    async def _segments(self, show_id: int) -> list[RecordedSegment]:
        return await asyncio.to_thread(read_recording, recording_dir(self.recordings, show_id))

    async def options(self, db: AsyncSession, show: Show) -> PublishOptions:
        segments = await self._segments(show.id)
        return PublishOptions(
            recorded_s=sum(s.duration_s for s in segments),
            blocked_by=await blocking_tracks(db, show.id, self._clock.now().date()),
        )

    async def publish(self, db: AsyncSession, show: Show, user: User, kind: ReplayKind) -> Replay:
        require_host(show, user)
        if show.status is not ShowStatus.ended:
            raise ApiError(409, "show_not_ended", "a replay can be published once the show ends")
        existing = await db.scalar(
            select(Replay).where(Replay.show_id == show.id, Replay.kind == kind)
        )
        if existing is not None and existing.state is not ReplayState.failed:
            raise ApiError(409, "replay_exists", f"the {kind} replay is already {existing.state}")
        segments = await self._segments(show.id)
        if not segments:
            raise ApiError(409, "not_recorded", "this show has no recording to publish")
        if kind is ReplayKind.full:
            blocked = await blocking_tracks(db, show.id, self._clock.now().date())
            if blocked:
                raise NotLicensedOnDemand(blocked)
        if existing is not None:
            await db.delete(existing)
            await db.flush()
        replay = Replay(
            show_id=show.id,
            kind=kind,
            state=ReplayState.processing,
            bytes=0,
            duration_s=0.0,
            chapters="[]",
            created_at=self._clock.now(),
        )
        db.add(replay)
        await db.commit()
        self._start(replay.id)
        log.info("replay publishing show=%s kind=%s replay=%s", show.id, kind, replay.id)
        return replay

    async def unpublish(self, db: AsyncSession, replay: Replay, show: Show, actor: User) -> None:
        """Takes the replay down; a moderator doing it for the host goes in the audit log."""
        path = replay.audio_path
        if actor.id != show.host_id:
            await audit.record(
                db,
                self._clock,
                actor_id=actor.id,
                action="replay.unpublish",
                target_user_id=show.host_id,
                show_id=show.id,
                replay_id=replay.id,
                kind=str(replay.kind),
            )
        await db.delete(replay)
        await db.commit()
        task = self._tasks.pop(replay.id, None)
        if task is not None:
            task.cancel()
        if path:
            Path(path).unlink(missing_ok=True)
        log.info("replay unpublished show=%s replay=%s", replay.show_id, replay.id)

    async def resume(self) -> None:
        """Encodes again what a stopped node left processing."""
        async with self._sessions() as db:
            stale = await db.scalars(
                select(Replay.id).where(Replay.state == ReplayState.processing)
            )
            for replay_id in stale:
                self._start(replay_id)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self, replay_id: int) -> None:
        """Until the replay's encoding has finished (for tests and the CLI)."""
        task = self._tasks.get(replay_id)
        if task is not None:
            await asyncio.shield(task)

    def _start(self, replay_id: int) -> None:
        task = asyncio.create_task(self._encode(replay_id), name=f"replay-{replay_id}")
        self._tasks[replay_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(replay_id, None))

    async def _encode(self, replay_id: int) -> None:
        async with self._one_at_a_time:
            try:
                await self._render(replay_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("replay failed replay=%s", replay_id)
                await self._finish(replay_id, error=_reason(exc))

    async def _render(self, replay_id: int) -> None:
        async with self._sessions() as db:
            replay = await db.get(Replay, replay_id)
            if replay is None:
                return
            show = await db.get(Show, replay.show_id)
            if show is None:
                return
            plays = [played(p, t) for p, t in await plays_with_licences(db, show.id)]
            kind, show_id, label = replay.kind, show.id, episode_title(replay, show)
            artist = show.host.display_name
        segments = await self._segments(show_id)
        if not segments:
            raise ValueError("the recording is gone")
        recorded = editing.Span(segments[0].wallclock, segments[-1].end_wallclock)
        plan = (editing.talk_plan if kind is ReplayKind.talk else editing.full_plan)(
            recorded, plays
        )
        out = self.replays / f"show-{show_id}" / f"replay-{replay_id}-{kind}.mp3"
        rendered = await asyncio.to_thread(
            editing.render_mp3, segments, plan, out, title=label, artist=artist
        )
        if not await self._finish(replay_id, rendered=rendered, path=out):
            out.unlink(missing_ok=True)  # unpublished while it was encoding

    async def _finish(
        self,
        replay_id: int,
        *,
        rendered: editing.Rendered | None = None,
        path: Path | None = None,
        error: str | None = None,
    ) -> bool:
        async with self._sessions() as db:
            replay = await db.get(Replay, replay_id)
            if replay is None:
                return False
            if rendered is None:
                replay.state, replay.error = ReplayState.failed, error
            else:
                replay.state = ReplayState.ready
                replay.audio_path = str(path)
                replay.bytes = rendered.bytes
                replay.duration_s = rendered.duration_s
                replay.chapters = json.dumps(rendered.chapters)
                replay.ready_at = self._clock.now()
            await db.commit()
        log.info("replay %s replay=%s", "ready" if rendered else "failed", replay_id)
        return True


def _reason(exc: Exception) -> str:
    """What the host is told: the editor's own reasons, never a path or a trace."""
    if isinstance(exc, OSError):
        return "the replay could not be written (the server's disk); try again later"
    text = str(exc) if isinstance(exc, ValueError) else ""
    return text[:500] or "the encoder failed"
