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
from typing import Any

from sqlalchemy import ColumnElement, Select, select
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


def _matching(
    track_ids: Sequence[int], artist_ids: Sequence[int]
) -> list[tuple[Select[Any], ColumnElement[bool]]]:
    """One (FROM, condition) per kind of key: plays of the tracks, plays of the artists'
    tracks. Asked apart, each seeks its index; as one OR with a subquery PostgreSQL walked
    every play by time instead (150 ms at a million plays)."""
    tracks, artists = list(track_ids)[:MAX_KEYS], list(artist_ids)[:MAX_KEYS]
    out: list[tuple[Select[Any], ColumnElement[bool]]] = []
    if tracks:
        out.append((select(PlayLog), PlayLog.track_id.in_(tracks)))
    if artists:
        joined = select(PlayLog).join(TrackArtist, TrackArtist.track_id == PlayLog.track_id)
        out.append((joined, TrackArtist.artist_id.in_(artists)))
    return out


async def playing_now(
    db: AsyncSession,
    *,
    track_ids: Sequence[int] = (),
    artist_ids: Sequence[int] = (),
    now: datetime,
    limit: int = 50,
) -> list[Play]:
    """The live shows whose song on air at `now` is one of `track_ids` or by one of
    `artist_ids`, the song that started most recently first; one play per show.

    The open rows are one per live show at most (two in a crossfade), so all that match are
    read, without an ORDER BY that would tempt a planner into walking the log by time."""
    if limit <= 0:
        return []
    rows: list[tuple[int, int, datetime]] = []
    for base, matching in _matching(track_ids, artist_ids):
        stmt = (
            base.with_only_columns(PlayLog.show_id, PlayLog.track_id, PlayLog.started_at)
            .join(Show, Show.id == PlayLog.show_id)
            .where(
                PlayLog.ended_at.is_(None),
                matching,
                PlayLog.started_at <= now,
                Show.status == ShowStatus.live,
            )
        )
        rows.extend((r[0], r[1], r[2]) for r in await db.execute(stmt))
    rows.sort(key=lambda r: r[2], reverse=True)
    plays: dict[int, Play] = {}
    for show_id, track_id, started_at in rows:
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
    if limit <= 0:
        return []
    # The plays alone first, read from the index (track, start, show, end) without a visit
    # to the shows per play; then the few shows they are in, once each.
    rows: list[tuple[int, int, datetime, datetime | None]] = []
    for base, matching in _matching(track_ids, artist_ids):
        stmt = (
            base.with_only_columns(
                PlayLog.show_id, PlayLog.track_id, PlayLog.started_at, PlayLog.ended_at
            )
            .where(matching, PlayLog.started_at <= now)
            .order_by(PlayLog.started_at.desc())
            .limit(RECENT_ROWS)
        )
        rows.extend((r[0], r[1], r[2], r[3]) for r in await db.execute(stmt))
    if not rows:
        return []
    shows = {r[0] for r in rows}
    status: dict[int, ShowStatus] = {
        show_id: s
        for show_id, s in await db.execute(select(Show.id, Show.status).where(Show.id.in_(shows)))
    }
    since = now - within
    rows.sort(key=lambda r: r[2], reverse=True)
    skip = set(exclude_shows)
    plays: dict[int, Play] = {}
    for show_id, track_id, started_at, ended_at in rows:
        if show_id in skip or show_id in plays or show_id not in status:
            continue
        if started_at < since and status[show_id] is not ShowStatus.ended:
            continue
        live = status[show_id] is ShowStatus.live
        if live and ended_at is None:
            # Still on air in a live show: that is playing now, not recently played.
            continue
        plays[show_id] = Play(show_id, track_id, started_at, ended_at, live)
    ordered = sorted(plays.values(), key=lambda p: (not p.live, -p.started_at.timestamp()))
    return ordered[:limit]
