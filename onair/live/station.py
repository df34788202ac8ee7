"""One live show's station: the studio running in real time, its program feed for the
transports, and the bookkeeping the program drives (queue states, play log, now playing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.catalog.models import Track
from onair.clock import Clock, SystemClock
from onair.licensing.licences import next_change
from onair.licensing.rules import Slot, Song, breaches
from onair.licensing.service import Licensing, song_of, timeline, track_problems
from onair.live.autodj import AutoDj, Window, deck_track, genre_name, load_candidates
from onair.media.audience import Audience
from onair.media.encoder import shared_encoder
from onair.media.feed import ProgramFeed, StationInfo
from onair.media.restream import RestreamSettings
from onair.media.webrtc import GoneReason, ShowMedia, VoiceLink
from onair.replays.recorder import ShowRecorder, start_recording
from onair.restream import service as restream
from onair.rooms.hub import RoomHub
from onair.royalties import analytics
from onair.royalties import service as play_log
from onair.royalties.models import ListenerSample, PlayLog
from onair.shows.browse import service as browse
from onair.shows.models import QueueItem, QueueState, Show
from onair.stage.service import Stage, user_of_voice
from onair.studio.deck import (
    DeckEvent,
    DeckTrack,
    LiveEnded,
    LiveStarted,
    LiveTitle,
    QueueEmpty,
    TrackEnded,
    TrackFailed,
    TrackStarted,
)
from onair.studio.frames import ProgramFrame
from onair.studio.livesource import LiveSource, SourceBusy
from onair.studio.studio import Studio

log = logging.getLogger("onair.live")

PROGRESS_EVERY_S = 10.0
LICENCE_CHECK_S = 1.0
"""How often the queue's next licence change is looked for (a comparison, no query)."""
LISTENERS_EVERY_S = 5.0
"""The show's listener count is written when it changes, at most this often."""


def heard_title(track: DeckTrack) -> str:
    """What ICY's StreamTitle and the page say: "Artist, Artist - Title"."""
    artists = ", ".join(track.artists)
    return f"{artists} - {track.title}" if artists else track.title


@dataclass
class _Play:
    play_id: int
    started: float
    listener_seconds: float = 0.0
    peak: int = 0
    genre_ids: tuple[int, ...] = ()
    credited: float = 0.0
    """Seconds of this play already credited to the show's genre time."""
    listeners_at_start: int = 0
    joins_at_start: int = 0
    performances: int = 0
    """Listeners at the start plus those who joined since (the transports' join counters)."""

    def count(self, audience: Audience) -> None:
        self.performances = self.listeners_at_start + audience.joins - self.joins_at_start


@dataclass(frozen=True)
class Resume:
    """Where a show's studio that stopped on another node left off (onair/cluster): the song
    on air, from `track.start_s`, and its play-log row, which this studio carries on."""

    track: DeckTrack
    play_id: int | None


@dataclass(frozen=True)
class Playhead:
    """What a studio saves every second or so, for the node that may have to resume it."""

    queue_item_id: int | None
    track_id: int | None
    position_s: float
    play_id: int | None


@dataclass
class StationSettings:
    crossfade_s: float = 3.0
    target_lufs: float = -16.0
    max_on_air: int = 10
    sample_every_s: float = 5.0
    """Shortest gap between two stored listener samples (analytics)."""
    sample_heartbeat_s: float = 60.0
    """A sample is stored at least this often while live, changed or not."""
    recordings: Path | None = None
    """Where shows are recorded (replays); None records nothing."""
    recording_segment_s: float = 300.0
    licensing: Licensing | None = None
    """Licence checks (and their clock); None plays whatever is queued."""
    restream: RestreamSettings = field(default_factory=RestreamSettings)
    """How pushes to the host's RTMP destinations retry."""


@dataclass
class LiveShow:
    show_id: int
    sessions: async_sessionmaker[AsyncSession]
    rooms: RoomHub
    webrtc_audience: Callable[[int], Audience]
    end_voice: Callable[[int, str], Awaitable[object]]
    """Ends a voice's line into this show (the stage took them off it)."""
    options: StationSettings = field(default_factory=StationSettings)
    clock: Clock = field(default_factory=SystemClock)
    resume: Resume | None = None
    """Set when this studio takes a show over from another node: the song on air goes first."""
    studio: Studio = field(init=False)
    stage: Stage = field(init=False)
    feed: ProgramFeed = field(init=False)
    _events: asyncio.Queue[DeckEvent] = field(init=False, default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _plays: dict[DeckTrack, _Play] = field(init=False, default_factory=dict)
    _started_items: set[int] = field(init=False, default_factory=set)
    _autodj: AutoDj = field(init=False)
    _listeners_saved: int = field(init=False, default=-1)
    _listeners_saved_at: float = field(init=False, default=-math.inf)
    _clean: bool = field(init=False, default=False)
    _windows: dict[int, Window] = field(init=False, default_factory=dict)
    """The auto-DJ candidates' licence windows."""
    _explicit: set[int] = field(init=False, default_factory=set)
    """Auto-DJ candidates with explicit lyrics (a show may be marked clean while live)."""
    _next_licence_change: datetime | None = field(init=False, default=None)
    _songs: dict[int, Song] = field(init=False, default_factory=dict)
    """Album and artists of the auto-DJ candidates, for the programming rules."""
    _heard: list[Slot] = field(init=False, default_factory=list)
    """What the show played in the rules' window, oldest first."""
    _sampler: analytics.AudienceSampler = field(init=False)
    _recorder: ShowRecorder | None = field(init=False, default=None)
    _live_title: str | None = field(init=False, default=None)
    """What the live source (DJ software) on air is playing, while one is."""
    songs_started: int = field(init=False, default=0)
    """Songs that went on air in this studio: a drain moves the show when it grows."""

    async def start(self) -> None:
        async with self.sessions() as db:
            show = await db.get(Show, self.show_id)
            if show is None:
                raise LookupError(f"show {self.show_id} not found")
            self._clean = show.clean
            candidates = await load_candidates(
                db,
                show.genre_id,
                licensing=self.options.licensing,
                show=show,
                windows=self._windows,
                songs=self._songs,
            )
            if self.options.licensing is not None:  # else nothing asks the two below
                line = await timeline(db, self.options.licensing, show)
                self._heard = line.heard
                ids = [c.track_id for c in candidates]
                self._explicit = set(
                    await db.scalars(select(Track.id).where(Track.id.in_(ids), Track.explicit))
                )
            genre = await genre_name(db, show.genre_id)
            info = StationInfo(
                name=show.title,
                description=show.description or f"{show.title} on OnAir",
                genre=genre or "",
                on_air_since=show.started_at.timestamp() if show.started_at else None,
            )
        self._autodj = AutoDj(candidates, allowed=self._autodj_allows, prefer=self._keeps_rules)
        self._sampler = analytics.AudienceSampler(
            self.options.sample_every_s, self.options.sample_heartbeat_s
        )
        self.feed = ProgramFeed(self.show_id, info)
        if self.options.recordings is not None:
            self._recorder = start_recording(
                self.feed, self.options.recordings, self.options.recording_segment_s
            )
        self.studio = Studio(
            crossfade_s=self.options.crossfade_s,
            target_lufs=self.options.target_lufs,
            on_event=self._events.put_nowait,
            on_need_track=self._autodj.pick,
        )
        self.stage = Stage(
            self.show_id,
            show.host_id,
            sessions=self.sessions,
            rooms=self.rooms,
            studio=self.studio,
            clock=self.clock,
            end_line=lambda voice_id: self.end_voice(self.show_id, voice_id),
            max_on_air=self.options.max_on_air,
        )
        await self.stage.load()
        # Followed on the bus from the start: the analytics count every node's reactions.
        await self.rooms.open(self.show_id)
        await self.sync_queue()
        self.studio.deck.play()
        self._tasks = [
            asyncio.create_task(
                self.studio.run(sink=self.feed.publish), name=f"studio-{self.show_id}"
            ),
            asyncio.create_task(self._bookkeeping(), name=f"bookkeeping-{self.show_id}"),
            asyncio.create_task(self._count_listeners(), name=f"listeners-{self.show_id}"),
            asyncio.create_task(self._watch_licences(), name=f"licences-{self.show_id}"),
        ]
        # On air first: a destination is pushed the program as it is, and never holds it up.
        await restream.start_enabled(self.sessions, self.feed, self.options.restream)
        log.info("studio started show=%s autodj_candidates=%d", self.show_id, len(candidates))

    async def stop(self, *, ended: bool = True, handover: bool = False) -> None:
        """`handover`: another node resumes the show from its playhead, so the song on air's
        play-log row is left open for that studio to carry on."""
        self.studio.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.stage.close(ended=ended)
        now = time.time()
        if handover:
            self._plays.clear()
        for track, play in list(self._plays.items()):
            await self._finish_play(
                track, play, now - play.started, skipped=False, reason="show ended"
            )
        await self._save_listeners(0)
        await self._save_sample(self._sampler.final(time.time(), self._reactions()))
        self.studio.close()
        if self._recorder is not None:
            self.feed.unsubscribe(self._recorder)
            await asyncio.to_thread(self._recorder.close)
        self.feed.close()
        log.info("studio stopped show=%s", self.show_id)

    def playhead(self) -> Playhead:
        """The song on air and how far into it the program is."""
        deck = self.studio.deck
        track = deck.now_playing
        play = self._plays.get(track) if track is not None else None
        return Playhead(
            queue_item_id=track.queue_item_id if track is not None else None,
            track_id=track.track_id if track is not None else None,
            position_s=deck.position_s if track is not None else 0.0,
            play_id=play.play_id if play is not None else None,
        )

    # --- what the host does ------------------------------------------------------------

    async def sync_queue(self) -> None:
        """Gives the deck the show's queue as stored, minus what it has already started and
        what may no longer be played (a licence that lapsed, explicit songs in a clean show),
        which is marked skipped with the reason and told to the crew."""
        skipped: list[tuple[QueueItem, str]] = []
        async with self.sessions() as db:
            stmt = (
                select(QueueItem)
                .where(QueueItem.show_id == self.show_id, QueueItem.state == QueueState.queued)
                .order_by(QueueItem.position)
            )
            items = (await db.scalars(stmt)).unique().all()
            licensing = self.options.licensing
            changes: list[datetime] = []
            if licensing is not None:
                show = await db.get(Show, self.show_id)
                now = licensing.clock.now()
                if show is not None:
                    self._clean = show.clean
                    for item in items:
                        problems = track_problems(licensing, show, item.track, now)
                        if problems and item.id not in self._started_items:
                            item.state = QueueState.skipped
                            item.skip_reason = problems[0].message[:255]
                            skipped.append((item, problems[0].message))
                        elif (change := next_change(item.track.licence, now)) is not None:
                            changes.append(change)
                    await db.commit()
            self._next_licence_change = min(changes, default=None)
            tracks = [
                deck_track(i.track, i.id)
                for i in items
                if i.id not in self._started_items
                and i.track.audio_path
                and i.state is QueueState.queued
            ]
        resumed = self.resume
        if resumed is not None and (
            resumed.track.queue_item_id is None
            or resumed.track.queue_item_id not in self._started_items
        ):
            tracks.insert(0, resumed.track)
        self.studio.deck.set_queue(tracks)
        for item, reason in skipped:
            log.info(
                "queued song skipped show=%s item=%s track=%s: %s",
                self.show_id,
                item.id,
                item.track_id,
                reason,
            )
            self.rooms.publish(
                self.show_id,
                "queue.skipped",
                {"queue_item_id": item.id, "title": item.track.title, "reason": reason},
                crew_only=True,
            )

    async def _stop_if_lapsed(self, track: DeckTrack) -> None:
        """The last guard: a song whose licence lapsed in the instant between the queue's last
        check and its start is cut at once (the queue's check normally removes it before)."""
        licensing = self.options.licensing
        if licensing is None or track.queue_item_id is None:
            return
        async with self.sessions() as db:
            item = await db.get(QueueItem, track.queue_item_id)
            show = await db.get(Show, self.show_id)
            if item is None or show is None:
                return
            problems = track_problems(licensing, show, item.track, licensing.clock.now())
            if not problems:
                return
            item.skip_reason = problems[0].message[:255]
            await db.commit()
        self.studio.deck.skip()
        log.warning(
            "song cut at its start show=%s item=%s: %s",
            self.show_id,
            track.queue_item_id,
            problems[0].message,
        )
        self.rooms.publish(
            self.show_id,
            "queue.skipped",
            {
                "queue_item_id": track.queue_item_id,
                "title": track.title,
                "reason": problems[0].message,
            },
            crew_only=True,
        )

    def _keeps_rules(self, track: DeckTrack) -> bool:
        """Whether an auto-DJ pick keeps the programming rules, judged as if heard now."""
        licensing = self.options.licensing
        song = self._songs.get(track.track_id)
        if licensing is None or licensing.rules is None or song is None:
            return True
        now = licensing.clock.now()
        slots = [s for s in self._heard if s.at >= now - licensing.rules.window]
        self._heard = slots
        return not breaches(licensing.rules, [*slots, Slot(song, now)], len(slots))

    def _autodj_allows(self, track: DeckTrack) -> bool:
        licensing = self.options.licensing
        if licensing is None:
            return True
        window = self._windows.get(track.track_id)
        if window is None or not window.covers(licensing.clock.now()):
            return False
        return not (self._clean and track.track_id in self._explicit)

    async def _watch_licences(self) -> None:
        """Re-checks the queue when a queued song's licence starts or lapses."""
        licensing = self.options.licensing
        if licensing is None:
            return
        while True:
            await asyncio.sleep(LICENCE_CHECK_S)
            change = self._next_licence_change
            if change is not None and licensing.clock.now() >= change:
                await self.sync_queue()

    def audience(self) -> Audience:
        return self.feed.audience() + self.webrtc_audience(self.show_id)

    def listeners(self) -> int:
        return self.audience().total

    def state(self) -> dict[str, Any]:
        deck = self.studio.deck
        playing = deck.now_playing
        level = deck.level_db
        on_air = _track_json(playing) if playing else None
        if playing is None and self._live_title is not None:
            on_air = _live_json(self._live_title)
        return {
            "playing": deck.playing,
            "now_playing": on_air,
            "position_s": round(deck.position_s, 2),
            "crossfade_s": deck.crossfade_s,
            "music_level_db": round(level, 1) if math.isfinite(level) else None,
            "listeners": self.listeners(),
            "source": _source_json(deck.live),
            "voices": {
                vid: {"muted": v.muted, "active": v.active} for vid, v in self.studio.voices.items()
            },
        }

    def open_voice(self, voice_id: str) -> VoiceLink:
        voice = self.studio.add_voice(voice_id)
        voice.connect()
        returns = self.studio.subscribe(voice_id=voice_id)
        user_id = user_of_voice(voice_id)
        name = voice_id if user_id is None else self.stage.name_of(user_id)
        if user_id is not None:
            self.stage.line_opened(user_id)

        def gone(reason: GoneReason) -> None:
            voice.disconnect()
            self.studio.unsubscribe(returns)
            if user_id is not None:
                self.stage.line_gone(user_id, reason)
            self.rooms.publish(
                self.show_id,
                "studio.voice_left",
                {"voice": voice_id, "name": name, "reason": reason},
            )
            log.info("voice left show=%s voice=%s reason=%s", self.show_id, voice_id, reason)

        self.rooms.publish(self.show_id, "studio.voice_joined", {"voice": voice_id, "name": name})
        return VoiceLink(sink=voice, returns=_frames(returns), on_gone=gone)

    def media(self) -> ShowMedia:
        return ShowMedia(program=shared_encoder(self.feed, "opus"), open_voice=self.open_voice)

    def open_source(self, name: str, container: str | None, title: str = "") -> LiveSource:
        """A live source (DJ software) into the music deck; it goes on air once buffered."""
        current = self.studio.deck.live
        if current is not None and not current.off_air:
            raise SourceBusy(f"a source already broadcasts into show {self.show_id}")
        source = LiveSource(name, container, title=title)
        source.start()
        self.studio.deck.go_live(source)
        log.info("live source connected show=%s source=%r", self.show_id, name)
        self.rooms.publish(
            self.show_id, "studio.source", {"state": "connected", "name": name}, crew_only=True
        )
        return source

    # --- what the program does ---------------------------------------------------------

    async def _bookkeeping(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._handle(event)
            except Exception:
                log.exception(
                    "bookkeeping failed show=%s event=%s", self.show_id, type(event).__name__
                )

    async def _handle(self, event: DeckEvent) -> None:
        if isinstance(event, TrackStarted):
            await self._track_started(event)
        elif isinstance(event, TrackEnded):
            play = self._plays.get(event.track)
            if play is not None:
                await self._finish_play(
                    event.track,
                    play,
                    event.track.start_s + event.seconds_played,
                    skipped=event.skipped,
                    reason=None,
                    heard_until=self.studio.wallclock_at(event.pts),
                )
        elif isinstance(event, TrackFailed):
            log.warning(
                "track failed show=%s track=%s: %s",
                self.show_id,
                event.track.track_id,
                event.reason,
            )
            await self._set_item_state(event.track.queue_item_id, QueueState.skipped)
            self.rooms.publish(
                self.show_id,
                "studio.track_failed",
                {"track": _track_json(event.track), "reason": event.reason},
            )
        elif isinstance(event, LiveStarted):
            self._live_heard(event.source, event.pts, None)
        elif isinstance(event, LiveTitle):
            self._live_heard(event.source, event.pts, event.title)
        elif isinstance(event, LiveEnded):
            if event.heard:
                self._live_title = None
            log.info(
                "live source ended show=%s source=%r: %s",
                self.show_id,
                event.source.name,
                event.reason,
            )
            self.rooms.publish(
                self.show_id,
                "studio.source",
                {"state": "ended", "name": event.source.name, "reason": event.reason},
                crew_only=True,
            )
        elif isinstance(event, QueueEmpty):
            self.rooms.publish(
                self.show_id,
                "studio.auto_dj",
                {"message": "the queue has run out: the auto-DJ is playing from the show's genre"},
            )

    def _live_heard(self, source: LiveSource, pts: int, title: str | None) -> None:
        """The live source went on air or sent a title: ICY, the page and the room follow."""
        heard = title or source.title or self.feed.info.name
        self.feed.set_title(pts, heard)
        self._live_title = heard
        self.rooms.publish(
            self.show_id,
            "now_playing",
            {
                "track": _live_json(heard),
                "pts": pts,
                "at": self.studio.wallclock_at(pts),
                "auto_dj": False,
                "live": True,
            },
            sticky=True,
        )

    async def _track_started(self, event: TrackStarted) -> None:
        track = event.track
        heard_at = self.studio.wallclock_at(event.pts)
        resumed = self.resume
        if resumed is not None and track == resumed.track:
            self.resume = None
            if resumed.play_id is not None and await self._carry_on(resumed, event, heard_at):
                return
        self.feed.set_title(event.pts, heard_title(track))
        if track.queue_item_id is not None:
            self._started_items.add(track.queue_item_id)
            await self._stop_if_lapsed(track)
        audience = self.audience()
        listeners = audience.total
        async with self.sessions() as db:
            if track.queue_item_id is not None:
                await db.execute(
                    update(QueueItem)
                    .where(QueueItem.show_id == self.show_id, QueueItem.state == QueueState.playing)
                    .values(state=QueueState.played)
                )
                await db.execute(
                    update(QueueItem)
                    .where(QueueItem.id == track.queue_item_id)
                    .values(state=QueueState.playing)
                )
            has_art = await db.scalar(
                select(Track.artwork_path.is_not(None)).where(Track.id == track.track_id)
            )
            if self.options.licensing is not None:
                heard = await db.get(Track, track.track_id)
                if heard is not None:
                    self._heard.append(Slot(song_of(heard), self.options.licensing.clock.now()))
            play_id = await play_log.play_started(
                db,
                show_id=self.show_id,
                track_id=track.track_id,
                queue_item_id=track.queue_item_id,
                started_at=datetime.fromtimestamp(heard_at, UTC),
                listeners=listeners,
                auto_dj=event.auto_dj,
            )
            genre_ids = await browse.track_genre_ids(db, track.track_id)
        self._plays[track] = _Play(
            play_id,
            heard_at,
            peak=listeners,
            genre_ids=genre_ids,
            listeners_at_start=listeners,
            joins_at_start=audience.joins,
            performances=listeners,
        )
        self.songs_started += 1
        self.rooms.publish(
            self.show_id,
            "now_playing",
            {
                "track": _track_json(track, artwork=bool(has_art)),
                "pts": event.pts,
                "at": heard_at,
                "auto_dj": event.auto_dj,
            },
            sticky=True,
        )

    async def _carry_on(self, resumed: Resume, event: TrackStarted, heard_at: float) -> bool:
        """Carries on the play-log row the stopped studio opened for the resumed song (one
        performance, not two); False when the row is gone or already closed."""
        track = resumed.track
        async with self.sessions() as db:
            row = await db.get(PlayLog, resumed.play_id)
            if row is None or row.ended_at is not None or row.show_id != self.show_id:
                return False
            genre_ids = await browse.track_genre_ids(db, track.track_id)
            has_art = await db.scalar(
                select(Track.artwork_path.is_not(None)).where(Track.id == track.track_id)
            )
            play = _Play(
                row.id,
                heard_at - track.start_s,
                listener_seconds=row.listener_seconds,
                peak=row.peak_listeners,
                genre_ids=genre_ids,
                credited=row.seconds_played,
                listeners_at_start=row.performances,
                joins_at_start=self.audience().joins,
                performances=row.performances,
            )
        if track.queue_item_id is not None:
            self._started_items.add(track.queue_item_id)
        self.feed.set_title(event.pts, heard_title(track))
        self._plays[track] = play
        self.songs_started += 1
        self.rooms.publish(
            self.show_id,
            "now_playing",
            {
                "track": _track_json(track, artwork=bool(has_art)),
                "pts": event.pts,
                "at": heard_at,
                "auto_dj": track.queue_item_id is None,
            },
            sticky=True,
        )
        return True

    async def _finish_play(
        self,
        track: DeckTrack,
        play: _Play,
        seconds: float,
        *,
        skipped: bool,
        reason: str | None,
        heard_until: float | None = None,
    ) -> None:
        """Closes the play's row; `heard_until` is when listeners heard its last sample (the
        program runs ahead of them), else now (the show stopped)."""
        self._plays.pop(track, None)
        play.count(self.audience())
        async with self.sessions() as db:
            await play_log.play_progress(
                db,
                play.play_id,
                seconds_played=seconds,
                listener_seconds=play.listener_seconds,
                peak_listeners=play.peak,
                performances=play.performances,
                ended_at=datetime.fromtimestamp(
                    time.time() if heard_until is None else heard_until, UTC
                ),
                skipped=skipped,
                end_reason=reason or ("skipped" if skipped else "finished"),
            )
            await self._credit(db, play, seconds)
        if track.queue_item_id is not None:
            await self._set_item_state(
                track.queue_item_id, QueueState.skipped if skipped else QueueState.played
            )

    async def _set_item_state(self, item_id: int | None, state: QueueState) -> None:
        if item_id is None:
            return
        async with self.sessions() as db:
            await db.execute(update(QueueItem).where(QueueItem.id == item_id).values(state=state))
            await db.commit()

    async def _count_listeners(self) -> None:
        """Listener-seconds per play, sampled each second and saved every PROGRESS_EVERY_S."""
        last = time.monotonic()
        last_save = last
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            audience = self.audience()
            listeners = audience.total
            for play in self._plays.values():
                play.listener_seconds += listeners * (now - last)
                play.peak = max(play.peak, listeners)
                play.count(audience)
            last = now
            sample = self._sampler.due(time.time(), audience, self._reactions())
            if sample is not None:
                await self._save_sample(sample)
            if listeners != self._listeners_saved and (
                now - self._listeners_saved_at >= LISTENERS_EVERY_S
            ):
                await self._save_listeners(listeners)
            if now - last_save >= PROGRESS_EVERY_S:
                last_save = now
                await self._save_progress()

    async def _save_progress(self) -> None:
        wall = time.time()
        for play in list(self._plays.values()):
            async with self.sessions() as db:
                await play_log.play_progress(
                    db,
                    play.play_id,
                    seconds_played=wall - play.started,
                    listener_seconds=play.listener_seconds,
                    peak_listeners=play.peak,
                    performances=play.performances,
                )
                await self._credit(db, play, wall - play.started)

    async def _credit(self, db: AsyncSession, play: _Play, seconds: float) -> None:
        """Brings the show's genre time up to `seconds` of this play (browse's genre match)."""
        seconds = max(0.0, seconds)
        delta, play.credited = seconds - play.credited, seconds  # before the await: no double
        await browse.credit_play(db, self.show_id, play.genre_ids, delta)

    def _reactions(self) -> int:
        return self.rooms.room(self.show_id).reactions_total

    async def _save_sample(self, sample: ListenerSample) -> None:
        """Stores a listener sample for the host's analytics; a failure costs only the sample."""
        try:
            async with self.sessions() as db:
                await analytics.save_sample(db, self.show_id, sample)
        except Exception:
            log.exception("could not save a listener sample show=%s", self.show_id)

    async def _save_listeners(self, listeners: int) -> None:
        """Puts the count on the show's row, where lists order live shows by it."""
        try:
            async with self.sessions() as db:
                await browse.save_listeners(db, self.show_id, listeners)
        except Exception:
            log.exception("could not save listeners show=%s", self.show_id)
            return
        self._listeners_saved = listeners
        self._listeners_saved_at = time.monotonic()


def _live_json(title: str) -> dict[str, Any]:
    """A live source's "Artist - Title" in the shape of a track (no id: not in the catalog)."""
    artist, _, song = title.rpartition(" - ")
    return {
        "id": None,
        "title": song,
        "artists": [artist] if artist else [],
        "duration_s": 0,
        "queue_item_id": None,
        "artwork_url": None,
        "live": True,
    }


def _source_json(source: LiveSource | None) -> dict[str, Any] | None:
    if source is None or source.off_air:
        return None
    return {"name": source.name, "title": source.title}


def _track_json(track: DeckTrack, *, artwork: bool = False) -> dict[str, Any]:
    return {
        "id": track.track_id,
        "title": track.title,
        "artists": list(track.artists),
        "duration_s": track.duration_s,
        "queue_item_id": track.queue_item_id,
        "artwork_url": f"/api/v1/catalog/tracks/{track.track_id}/artwork" if artwork else None,
    }


async def _frames(subscription: Any) -> AsyncIterator[ProgramFrame]:
    async for frame in subscription:
        yield frame
