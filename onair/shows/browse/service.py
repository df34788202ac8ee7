"""What browsing reads and what the live program keeps up for it.

- **Listeners now**: the studio writes `shows.listeners_now` (and the peak) when the count
  changes, so the database orders and pages live shows by listeners on any node.
- **Genre match**: the studio credits each play's seconds to the show (`played_seconds`) and to
  every genre of the track (`show_genre_seconds`); a show's match is the share of its played
  seconds whose track carries the genre the show claims.
- **Trending hashtags**: see `trending_hashtags`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from onair.catalog.models import TrackGenre
from onair.clock import Clock
from onair.royalties.models import PlayLog
from onair.shows.browse.models import ShowGenreSeconds
from onair.shows.models import Show, ShowHashtag, ShowStatus

MIN_PLAYED_S = 180.0
"""Below three minutes of music a show's genre match says nothing yet."""
MATCH_SHARE = 0.5
"""A show plays its genre when at least half of its played minutes are in it."""
TRENDING_WINDOW = timedelta(hours=24)
TRENDING_EVERY_S = 60.0
"""The trending list is recomputed at most this often per node (it sums a day of plays)."""
TRENDING_MAX = 50

Verdict = Literal["too_early", "matches", "mostly_plays", "off_genre", "no_genre"]


@dataclass(frozen=True)
class GenreMatch:
    genre: str | None
    """The genre the show claims."""
    share: float | None
    """Share (0-1) of the played seconds whose track carries the claimed genre."""
    played_s: float
    top_genre: str | None
    """The genre with the most played seconds, and its share."""
    top_share: float | None
    verdict: Verdict

    @property
    def mostly_plays(self) -> str | None:
        """The other genre a show far off its own mostly plays (or a genreless show plays)."""
        if self.verdict == "mostly_plays":
            return self.top_genre
        if self.verdict == "no_genre" and (self.top_share or 0.0) >= MATCH_SHARE:
            return self.top_genre
        return None

    @property
    def label(self) -> str:
        """What a show card says: "92 % Jazz", "Mostly plays Electronic", "Off-genre"."""
        if self.verdict == "matches" and self.share is not None:
            return f"{round(self.share * 100)} % {self.genre}"
        if self.mostly_plays is not None:
            return f"Mostly plays {self.mostly_plays}"
        if self.verdict == "off_genre":
            return "Off-genre"
        return ""

    @property
    def detail(self) -> str:
        """The longer sentence (a tooltip, the show page)."""
        minutes = round(self.played_s / 60)
        if self.verdict == "too_early":
            return "Not enough music played yet to tell how well it matches its genre."
        if self.genre is None or self.share is None:
            if self.top_genre is None or self.top_share is None:
                return f"None of the {minutes} minutes played had a genre."
            top = round(self.top_share * 100)
            return f"{top} % of {minutes} minutes played were {self.top_genre}."
        said = f"{round(self.share * 100)} % of {minutes} minutes played were {self.genre}"
        if self.verdict == "mostly_plays" and self.top_share is not None:
            return f"{said}; {round(self.top_share * 100)} % were {self.top_genre}."
        return said + "."


def genre_match(show: Show) -> GenreMatch | None:
    """The show's match, from the rows loaded with it; None for a show not yet on air."""
    if show.status is ShowStatus.scheduled:
        return None
    played = show.played_seconds or 0.0
    rows = _loaded_genre_seconds(show)
    claimed = show.genre.name if show.genre else None
    top = max(rows, key=lambda r: (r.seconds, -r.genre_id), default=None)
    top_share = top.seconds / played if top is not None and played > 0 else None
    share: float | None = None
    if claimed is not None and played > 0:
        mine = next((r.seconds for r in rows if r.genre_id == show.genre_id), 0.0)
        share = min(1.0, mine / played)
    verdict: Verdict
    if played < MIN_PLAYED_S:
        verdict = "too_early"
    elif claimed is None:
        verdict = "no_genre"
    elif share is not None and share >= MATCH_SHARE:
        verdict = "matches"
    elif top is not None and top_share is not None and top_share >= MATCH_SHARE:
        verdict = "mostly_plays"
    else:
        verdict = "off_genre"
    return GenreMatch(
        genre=claimed,
        share=share,
        played_s=played,
        top_genre=top.genre.name if top is not None else None,
        top_share=min(1.0, top_share) if top_share is not None else None,
        verdict=verdict,
    )


def _loaded_genre_seconds(show: Show) -> list[ShowGenreSeconds]:
    # A show made in this session has never been loaded (nor played): reading the collection
    # would lazy-load, which async sessions cannot.
    if "genre_seconds" in show.__dict__:
        return list(show.genre_seconds)
    return []


# --- listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenreRank:
    """How a list of shows is filtered to and ranked by one genre."""

    where: ColumnElement[bool]
    order: tuple[ColumnElement[Any], ...]
    seconds: type[ShowGenreSeconds]
    """An alias of the table, for the (show, genre) row."""
    genre_id: int


def genre_rank(genre_id: int) -> GenreRank:
    """Shows that claim the genre or mostly play it, ranked: first those that really play it
    (share at least MATCH_SHARE), by share; then those too new to tell; then the ones off it.

    The caller outer-joins `seconds` on (show, genre)."""
    played = aliased(ShowGenreSeconds, name="genre_played")
    seconds = func.coalesce(played.seconds, 0.0)
    enough = Show.played_seconds >= MIN_PLAYED_S
    plays_it = and_(enough, seconds >= MATCH_SHARE * Show.played_seconds)
    tier = case((plays_it, 0), (~enough, 1), else_=2)
    share = case((enough, seconds / Show.played_seconds), else_=0.0)
    # The candidates come from two indexes (shows claiming it, shows that played some of it),
    # so a long history is not read show by show.
    candidates = union(
        select(Show.id).where(Show.genre_id == genre_id),
        select(ShowGenreSeconds.show_id).where(ShowGenreSeconds.genre_id == genre_id),
    )
    return GenreRank(
        where=and_(Show.id.in_(candidates), or_(Show.genre_id == genre_id, plays_it)),
        order=(tier, share.desc()),
        seconds=played,
        genre_id=genre_id,
    )


def by_listeners() -> tuple[ColumnElement[Any], ...]:
    return (Show.listeners_now.desc(), Show.listeners_peak.desc())


# --- what the live program writes ----------------------------------------------------------


async def track_genre_ids(db: AsyncSession, track_id: int) -> tuple[int, ...]:
    stmt = select(TrackGenre.genre_id).where(TrackGenre.track_id == track_id)
    return tuple(await db.scalars(stmt))


async def credit_play(
    db: AsyncSession, show_id: int, genre_ids: Sequence[int], seconds: float
) -> None:
    """Adds `seconds` of a play (negative corrects an estimate) to the show and its genres.

    Only the studio of the show writes its rows, so update-then-insert does not race.
    """
    if seconds == 0:
        return
    await db.execute(
        update(Show)
        .where(Show.id == show_id)
        .values(played_seconds=Show.played_seconds + seconds)
        .execution_options(synchronize_session=False)
    )
    for genre_id in genre_ids:
        result = await db.execute(
            update(ShowGenreSeconds)
            .where(ShowGenreSeconds.show_id == show_id, ShowGenreSeconds.genre_id == genre_id)
            .values(seconds=ShowGenreSeconds.seconds + seconds)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 0:
            db.add(ShowGenreSeconds(show_id=show_id, genre_id=genre_id, seconds=max(0.0, seconds)))
    await db.commit()


async def save_listeners(db: AsyncSession, show_id: int, listeners: int) -> None:
    await db.execute(
        update(Show)
        .where(Show.id == show_id)
        .values(
            listeners_now=listeners,
            listeners_peak=case(
                (Show.listeners_peak < listeners, listeners), else_=Show.listeners_peak
            ),
        )
        .execution_options(synchronize_session=False)
    )
    await db.commit()


# --- hashtags ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendingTag:
    tag: str
    shows: int
    live: int
    listener_minutes: float
    score: float


def _on_air_since(since: datetime, now: datetime) -> ColumnElement[bool]:
    """Shows on air at some time in [since, now]: live now, or started or ended in it."""
    return or_(
        Show.status == ShowStatus.live,
        and_(Show.started_at >= since, Show.started_at <= now),
        and_(Show.ended_at >= since, Show.ended_at <= now),
    )


async def trending_hashtags(
    db: AsyncSession,
    now: datetime,
    *,
    limit: int = 10,
    window: timedelta = TRENDING_WINDOW,
) -> list[TrendingTag]:
    """Hashtags ranked by the shows on air in the last 24 hours that carry them.

    A show counts if it is live now, or started or ended in the window. Each such show adds
    1 to its tags' score, plus the listener-minutes it gathered in the window (the play log's
    listener-seconds of the songs it started playing in the window, / 60): a show nobody
    listens to still counts once, and an hour with 30 listeners counts 1,800 times more.
    Ties go to the tag with more shows live now, then alphabetically.
    """
    since = now - window
    on_air_shows = select(
        Show.id.label("show_id"),
        case((Show.status == ShowStatus.live, 1), else_=0).label("live"),
    ).where(_on_air_since(since, now))
    plays = select(
        PlayLog.show_id.label("show_id"),
        (func.sum(PlayLog.listener_seconds) / 60.0).label("minutes"),
    ).where(PlayLog.started_at >= since, PlayLog.started_at <= now)
    on_air = on_air_shows.cte("on_air")
    minutes = plays.group_by(PlayLog.show_id).subquery()
    listener_minutes = func.coalesce(func.sum(func.coalesce(minutes.c.minutes, 0.0)), 0.0)
    shows = func.count(on_air.c.show_id)  # a show carries a tag once
    live = func.sum(on_air.c.live)
    score = shows + listener_minutes
    stmt = (
        select(ShowHashtag.tag, shows, live, listener_minutes, score)
        .select_from(on_air)
        .join(ShowHashtag, ShowHashtag.show_id == on_air.c.show_id)
        .outerjoin(minutes, minutes.c.show_id == on_air.c.show_id)
        .group_by(ShowHashtag.tag)
        .order_by(score.desc(), live.desc(), ShowHashtag.tag)
        .limit(limit)
    )
    rows = (await db.execute(stmt)).all()
    return [
        TrendingTag(
            tag=r[0],
            shows=int(r[1]),
            live=int(r[2] or 0),
            listener_minutes=round(float(r[3] or 0.0), 1),
            score=round(float(r[4] or 0.0), 1),
        )
        for r in rows
    ]


class TrendingBoard:
    """The trending hashtags, computed at most once every TRENDING_EVERY_S on this node.

    Every home page shows them, and they move over minutes and hours, not per request."""

    def __init__(self, clock: Clock, every_s: float = TRENDING_EVERY_S) -> None:
        self._clock = clock
        self._every_s = every_s
        self._at = -math.inf
        self._tags: list[TrendingTag] = []
        self._lock = asyncio.Lock()

    async def top(self, db: AsyncSession, limit: int) -> list[TrendingTag]:
        if self._clock.monotonic() - self._at >= self._every_s:
            async with self._lock:
                if self._clock.monotonic() - self._at >= self._every_s:
                    self._tags = await trending_hashtags(db, self._clock.now(), limit=TRENDING_MAX)
                    self._at = self._clock.monotonic()
        return self._tags[:limit]

    async def summary(self, db: AsyncSession, tag: str) -> HashtagSummary:
        """One tag's numbers; a tag on the trending list takes its numbers from there (the
        busiest tags are the dearest to count)."""
        listed = next((t for t in await self.top(db, TRENDING_MAX) if t.tag == tag), None)
        return await hashtag_summary(db, tag, self._clock.now(), trending=listed)


@dataclass(frozen=True)
class HashtagSummary:
    tag: str
    shows: int
    """Every show that ever carried the tag."""
    live: int
    trending: TrendingTag | None
    """The tag's score over the last 24 hours; None when no show carrying it was on air."""


async def hashtag_summary(
    db: AsyncSession,
    tag: str,
    now: datetime,
    window: timedelta = TRENDING_WINDOW,
    *,
    trending: TrendingTag | None = None,
) -> HashtagSummary:
    """The tag's shows, and its trending numbers counted as `trending_hashtags` counts them,
    read through the tag's own shows (by index) rather than the window's plays."""
    since = now - window
    tagged = select(ShowHashtag.show_id).where(ShowHashtag.tag == tag)
    counts = select(
        func.count(),
        func.coalesce(func.sum(case((Show.status == ShowStatus.live, 1), else_=0)), 0),
        func.coalesce(func.sum(case((_on_air_since(since, now), 1), else_=0)), 0),
    ).where(Show.id.in_(tagged))
    total, live, on_air = (await db.execute(counts)).one()
    if trending is None and on_air:
        # Plays started in the window are the plays of shows on air in it.
        seconds = await db.scalar(
            select(func.coalesce(func.sum(PlayLog.listener_seconds), 0.0)).where(
                PlayLog.show_id.in_(tagged), PlayLog.started_at >= since, PlayLog.started_at <= now
            )
        )
        minutes = float(seconds or 0.0) / 60
        trending = TrendingTag(
            tag=tag,
            shows=int(on_air),
            live=int(live),
            listener_minutes=round(minutes, 1),
            score=round(on_air + minutes, 1),
        )
    return HashtagSummary(tag=tag, shows=int(total), live=int(live), trending=trending)
