"""A show's audience for its host: listeners over time by transport, songs, chat and reactions.

The station samples its audience every second; `AudienceSampler` decides which of those
readings are stored (`ListenerSample` rows): a change, at most every `min_interval_s`; a new
peak at once; and at least every `heartbeat_s` while live, so an hour of a steady audience
costs sixty rows rather than 3,600. The samples are a step function: each holds until the next,
and the station writes a last sample of zeros when the show stops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog import service as catalog
from onair.catalog.models import Track
from onair.media.audience import KINDS, Audience
from onair.rooms.models import ChatMessage
from onair.royalties.models import ListenerSample, PlayLog
from onair.shows.models import Show, ShowStatus
from onair.stage import crew

KIND_LABELS = {
    "webrtc": "Browser (WebRTC)",
    "hls": "HLS",
    "stream": "Stream (MP3/AAC)",
    "smart_speaker": "Smart speaker",
}


# --- sampling, in the station


@dataclass
class AudienceSampler:
    """Which of the station's once-a-second readings become stored samples."""

    min_interval_s: float = 5.0
    heartbeat_s: float = 60.0
    _last: tuple[int, ...] | None = None
    _last_at: float = -math.inf
    _peak: int = 0
    _reactions_stored: int | None = None

    def due(self, now: float, audience: Audience, reactions_total: int) -> ListenerSample | None:
        """The sample to store for this reading at Unix time `now`, or None."""
        if self._reactions_stored is None:
            self._reactions_stored = reactions_total
        counts = tuple(audience.counts().values())
        reactions = reactions_total - self._reactions_stored
        since = now - self._last_at
        changed = counts != self._last or reactions > 0
        first = self._last is None
        peak = audience.total > self._peak
        due = since >= self.heartbeat_s or (changed and since >= self.min_interval_s)
        if not (first or peak or due):
            return None
        return self._take(now, audience, reactions_total)

    def final(self, now: float, reactions_total: int) -> ListenerSample:
        """The show has stopped: nobody listens from `now` on."""
        if self._reactions_stored is None:
            self._reactions_stored = reactions_total
        return self._take(now, Audience(), reactions_total)

    def _take(self, now: float, audience: Audience, reactions_total: int) -> ListenerSample:
        assert self._reactions_stored is not None
        reactions = max(0, reactions_total - self._reactions_stored)
        self._reactions_stored = reactions_total
        self._last = tuple(audience.counts().values())
        self._last_at = now
        self._peak = max(self._peak, audience.total)
        return ListenerSample(
            at=datetime.fromtimestamp(now, UTC), reactions=reactions, **audience.counts()
        )


async def save_sample(db: AsyncSession, show_id: int, sample: ListenerSample) -> None:
    sample.show_id = show_id
    db.add(sample)
    await db.commit()


# --- reading, for the host


async def may_see(db: AsyncSession, show: Show, user: User | None) -> bool:
    """The host, the co-hosts who accepted, and admins (moderators do not need the numbers)."""
    if user is None:
        return False
    if show.host_id == user.id or user.is_admin:
        return True
    return user.id in await crew.accepted_ids(db, show.id)


@dataclass(frozen=True)
class Point:
    at: datetime
    listeners: int
    by_kind: dict[str, int]


@dataclass(frozen=True)
class Transport:
    kind: str
    label: str
    peak: int
    listener_hours: float
    share: float
    """Of all listening time, 0..1."""


@dataclass(frozen=True)
class Song:
    play_id: int
    track_id: int
    title: str
    artists: list[str]
    started_at: datetime
    seconds_played: float
    performances: int
    average_listeners: float
    peak_listeners: int
    skipped: bool
    auto_dj: bool


@dataclass(frozen=True)
class ShowAnalytics:
    show_id: int
    title: str
    status: str
    start: datetime | None
    """When the first sample was taken (the show went live), or None without samples."""
    end: datetime | None
    """Where the samples stop holding: the last sample, or now while the show is live."""
    points: list[Point]
    peak_listeners: int
    average_listeners: float
    listener_hours: float
    chat_messages: int
    chatters: int
    reactions: int
    transports: list[Transport]
    setlist: list[Song] = field(default_factory=list)


def _span_end(show: Show, samples: Sequence[ListenerSample], now: datetime) -> datetime | None:
    if not samples:
        return None
    last = samples[-1]
    if last.total == 0:
        return last.at
    # No closing sample (the node died): the last reading holds until the show ended, or now.
    until = show.ended_at if show.status is ShowStatus.ended and show.ended_at else now
    return max(until, last.at)


def _integrate(samples: Sequence[ListenerSample], end: datetime) -> tuple[float, dict[str, float]]:
    """Listener-seconds in all and per kind, each sample holding until the next (or `end`)."""
    total = 0.0
    per_kind = dict.fromkeys(KINDS, 0.0)
    for i, sample in enumerate(samples):
        until = samples[i + 1].at if i + 1 < len(samples) else end
        seconds = max(0.0, (until - sample.at).total_seconds())
        for kind in KINDS:
            listeners = getattr(sample, kind)
            per_kind[kind] += listeners * seconds
            total += listeners * seconds
    return total, per_kind


async def _setlist(db: AsyncSession, show_id: int) -> list[Song]:
    plays = list(
        await db.execute(
            select(PlayLog, Track.title)
            .join(Track, Track.id == PlayLog.track_id)
            .where(PlayLog.show_id == show_id)
            .order_by(PlayLog.started_at, PlayLog.id)
        )
    )
    track_ids = {play.track_id for play, _ in plays}
    artists = await catalog.artist_names(db, track_ids)
    songs = []
    for play, title in plays:
        seconds = play.seconds_played or 0.0
        songs.append(
            Song(
                play_id=play.id,
                track_id=play.track_id,
                title=title,
                artists=artists.get(play.track_id, []),
                started_at=play.started_at,
                seconds_played=round(seconds, 1),
                performances=play.performances,
                average_listeners=round(play.listener_seconds / seconds, 2) if seconds else 0.0,
                peak_listeners=play.peak_listeners,
                skipped=play.skipped,
                auto_dj=play.auto_dj,
            )
        )
    return songs


async def show_analytics(db: AsyncSession, show: Show, now: datetime) -> ShowAnalytics:
    samples = list(
        await db.scalars(
            select(ListenerSample)
            .where(ListenerSample.show_id == show.id)
            .order_by(ListenerSample.at, ListenerSample.id)
        )
    )
    end = _span_end(show, samples, now)
    seconds, per_kind = _integrate(samples, end) if end else (0.0, dict.fromkeys(KINDS, 0.0))
    span = (end - samples[0].at).total_seconds() if end and samples else 0.0
    chat = (
        await db.execute(
            select(func.count(), func.count(func.distinct(ChatMessage.user_id))).where(
                ChatMessage.show_id == show.id,
                ChatMessage.deleted_at.is_(None),
                ChatMessage.held_reason.is_(None),
            )
        )
    ).one()
    transports = [
        Transport(
            kind=kind,
            label=KIND_LABELS[kind],
            peak=max((getattr(s, kind) for s in samples), default=0),
            listener_hours=round(per_kind[kind] / 3600, 3),
            share=round(per_kind[kind] / seconds, 4) if seconds else 0.0,
        )
        for kind in KINDS
    ]
    return ShowAnalytics(
        show_id=show.id,
        title=show.title,
        status=show.status.value,
        start=samples[0].at if samples else None,
        end=end,
        points=[
            Point(at=s.at, listeners=s.total, by_kind={k: getattr(s, k) for k in KINDS})
            for s in samples
        ],
        peak_listeners=max((s.total for s in samples), default=0),
        average_listeners=round(seconds / span, 2) if span else 0.0,
        listener_hours=round(seconds / 3600, 3),
        chat_messages=int(chat[0]),
        chatters=int(chat[1]),
        reactions=sum(s.reactions for s in samples),
        transports=transports,
        setlist=await _setlist(db, show.id),
    )
