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

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    TextualSelect,
    bindparam,
    column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import TrackArtist
from onair.db.base import UTCDateTime
from onair.royalties.models import PlayLog
from onair.shows.models import Show, ShowStatus

# How many tracks or artists one lookup may be asked about; a search passes its best ones.
MAX_KEYS = 500
# The latest plays of each track read for "recently played", and the songs an artist counts
# with; tracks per statement (SQLite allows 500 terms in a compound SELECT).
RECENT_PER_TRACK = 10
MAX_ARTIST_TRACKS = 100
UNION_CHUNK = 100


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
    read, from the on-air index, without an ORDER BY that would tempt a planner into walking
    the log by time and without a join that (with an index on shows' status) tempted SQLite
    into visiting every live show; then the shows they are in, once each."""
    if limit <= 0:
        return []
    rows: list[tuple[int, int, datetime]] = []
    for base, matching in _matching(track_ids, artist_ids):
        stmt = base.with_only_columns(PlayLog.show_id, PlayLog.track_id, PlayLog.started_at).where(
            PlayLog.ended_at.is_(None), matching, PlayLog.started_at <= now
        )
        rows.extend((r[0], r[1], r[2]) for r in await db.execute(stmt))
    if not rows:
        return []
    live = set(
        await db.scalars(
            select(Show.id).where(Show.id.in_({r[0] for r in rows}), Show.status == ShowStatus.live)
        )
    )
    rows.sort(key=lambda r: r[2], reverse=True)
    plays: dict[int, Play] = {}
    for show_id, track_id, started_at in rows:
        if show_id in live:
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

    A popular song has tens of thousands of plays, so each track's are read from its end of
    the index (track, start, show, end), its latest RECENT_PER_TRACK only: bounded work
    however long the log, rather than every play sorted. An artist counts with their first
    MAX_ARTIST_TRACKS songs."""
    if limit <= 0:
        return []
    tracks = list(dict.fromkeys([*track_ids[:MAX_KEYS], *await _artist_tracks(db, artist_ids)]))
    rows: list[tuple[int, int, datetime, datetime | None]] = []
    if db.get_bind().dialect.name == "postgresql":
        result = await db.execute(_LATEST_PLAYS_LATERAL, {"tracks": tracks, "now": now})
        rows.extend((r[0], r[1], r[2], r[3]) for r in result)
    else:
        for start in range(0, len(tracks), UNION_CHUNK):
            chunk = tracks[start : start + UNION_CHUNK]
            params: dict[str, object] = {f"t{i}": t for i, t in enumerate(chunk)}
            result = await db.execute(_latest_plays(len(chunk)), {**params, "now": now})
            rows.extend((r[0], r[1], r[2], r[3]) for r in result)
    if not rows:
        return []
    status: dict[int, ShowStatus] = {
        show_id: s
        for show_id, s in await db.execute(
            select(Show.id, Show.status).where(Show.id.in_({r[0] for r in rows}))
        )
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


_PLAY_COLUMNS = (
    column("show_id", Integer),
    column("track_id", Integer),
    column("started_at", UTCDateTime()),
    column("ended_at", UTCDateTime()),
)

# PostgreSQL: one lateral seek per track, a plan of the same small size for any number.
_LATEST_PLAYS_LATERAL = (
    text(
        "SELECT p.show_id, p.track_id, p.started_at, p.ended_at"
        " FROM unnest(CAST(:tracks AS integer[])) AS t(id) CROSS JOIN LATERAL"
        " (SELECT show_id, track_id, started_at, ended_at FROM play_log"
        "  WHERE track_id = t.id AND started_at <= :now"
        f"  ORDER BY started_at DESC LIMIT {RECENT_PER_TRACK}) AS p"
    )
    .bindparams(bindparam("now", type_=UTCDateTime()))
    .columns(*_PLAY_COLUMNS)
)


@functools.cache
def _latest_plays(tracks: int) -> TextualSelect:
    """SQLite (no LATERAL): each of `tracks` tracks' latest plays, one index seek per track
    in one statement.
    Written out (and kept per size) because building a union of a hundred selects costs
    more than running it."""
    one = (
        "SELECT * FROM (SELECT show_id, track_id, started_at, ended_at FROM play_log"
        " WHERE track_id = :t{i} AND started_at <= :now"
        f" ORDER BY started_at DESC LIMIT {RECENT_PER_TRACK}) AS p{{i}}"
    )
    sql = " UNION ALL ".join(one.format(i=i) for i in range(tracks))
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime())).columns(*_PLAY_COLUMNS)


async def _artist_tracks(db: AsyncSession, artist_ids: Sequence[int]) -> list[int]:
    if not artist_ids:
        return []
    stmt = (
        select(TrackArtist.track_id)
        .where(TrackArtist.artist_id.in_(list(artist_ids)[:MAX_KEYS]))
        .limit(MAX_ARTIST_TRACKS)
    )
    return list(await db.scalars(stmt))
