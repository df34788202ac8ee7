"""Who is playing this now, and who played it: read from the play log, never from the queue.

A play-log row is written when a song is heard (its `started_at` is the moment it reaches
listeners) and closed when it stops, so an open row of a live show is a song on air now. Songs
still waiting in a queue have no row, which is how they stay secret: licensed webcasts may not
announce songs ahead (US rules), so discovery only ever tells what has been heard.

Both lookups start from the few tracks a search found (or one song, one artist) and read the
play-log indexes of migration 0006: the open rows by track (a few thousand entries at most,
one per live show), and every play by track and time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import TrackArtist
from onair.royalties.models import PlayLog
from onair.shows.models import Show, ShowStatus

# How many tracks or artists one lookup may be asked about; a search passes its best ones.
MAX_KEYS = 500
# Play-log rows read for "recently played" before the latest per show are picked.
RECENT_ROWS = 500


@dataclass(frozen=True)
class Play:
    """A show's play of a track: on air now when `ended_at` is None and the show is live."""

    show_id: int
    track_id: int
    started_at: datetime
    ended_at: datetime | None
    live: bool


def _matching(track_ids: Sequence[int], artist_ids: Sequence[int]) -> ColumnElement[bool] | None:
    """The condition on the play's track: one of the tracks, or by one of the artists."""
    tracks, artists = list(track_ids)[:MAX_KEYS], list(artist_ids)[:MAX_KEYS]
    parts: list[ColumnElement[bool]] = []
    if tracks:
        parts.append(PlayLog.track_id.in_(tracks))
    if artists:
        by_artist = select(TrackArtist.track_id).where(TrackArtist.artist_id.in_(artists))
        parts.append(PlayLog.track_id.in_(by_artist))
    if not parts:
        return None
    return or_(*parts)


async def playing_now(
    db: AsyncSession,
    *,
    track_ids: Sequence[int] = (),
    artist_ids: Sequence[int] = (),
    now: datetime,
    limit: int = 50,
) -> list[Play]:
    """The live shows whose song on air at `now` is one of `track_ids` or by one of
    `artist_ids`, the song that started most recently first; one play per show."""
    matching = _matching(track_ids, artist_ids)
    if matching is None or limit <= 0:
        return []
    stmt = (
        select(PlayLog.show_id, PlayLog.track_id, PlayLog.started_at)
        .join(Show, Show.id == PlayLog.show_id)
        .where(
            PlayLog.ended_at.is_(None),
            matching,
            PlayLog.started_at <= now,
            Show.status == ShowStatus.live,
        )
        .order_by(PlayLog.started_at.desc())
        .limit(limit * 2)
    )
    plays: dict[int, Play] = {}
    for show_id, track_id, started_at in await db.execute(stmt):
        plays.setdefault(show_id, Play(show_id, track_id, started_at, None, True))
    return list(plays.values())[:limit]


async def recently_played(
    db: AsyncSession,
    *,
    track_ids: Sequence[int] = (),
    artist_ids: Sequence[int] = (),
    now: datetime,
    within: timedelta = timedelta(hours=6),
    limit: int = 20,
    exclude_shows: Sequence[int] = (),
) -> list[Play]:
    """Shows that played one of the tracks (or the artists' tracks): within `within` before
    `now`, or at any time in an ended show (its setlist). Live shows first, then the latest
    play first; one play (the latest) per show, none of `exclude_shows` (those playing it now).
    """
    matching = _matching(track_ids, artist_ids)
    if matching is None or limit <= 0:
        return []
    stmt = (
        select(PlayLog.show_id, PlayLog.track_id, PlayLog.started_at, PlayLog.ended_at, Show.status)
        .join(Show, Show.id == PlayLog.show_id)
        .where(
            matching,
            PlayLog.started_at <= now,
            or_(PlayLog.started_at >= now - within, Show.status == ShowStatus.ended),
        )
        .order_by(PlayLog.started_at.desc())
        .limit(RECENT_ROWS)
    )
    skip = set(exclude_shows)
    plays: dict[int, Play] = {}
    for show_id, track_id, started_at, ended_at, status in await db.execute(stmt):
        if show_id in skip or show_id in plays:
            continue
        live = status is ShowStatus.live
        if live and ended_at is None:
            # Still on air in a live show: that is playing now, not recently played.
            continue
        plays[show_id] = Play(show_id, track_id, started_at, ended_at, live)
    ordered = sorted(plays.values(), key=lambda p: (not p.live, -p.started_at.timestamp()))
    return ordered[:limit]
