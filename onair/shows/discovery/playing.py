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
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.search import Statement, Steps, in_list, is_sqlite, run_one
from onair.shows.models import ShowStatus

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


# The lookups are steps (`onair.catalog.search.run_steps`), so the search box runs them with
# its index searches in one trip to SQLite's thread. Their statements are plain SQL, so
# timestamps are bound and read as each database keeps them (`_bound`, `_stamp`).


def _bound(moment: datetime, sqlite: bool) -> object:
    """`moment` as the play log stores it: SQLAlchemy's text on SQLite, a timestamp elsewhere."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment


def _stamp(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _keys(
    column: str, values: Sequence[int], sqlite: bool, prefix: str
) -> tuple[str, dict[str, object]]:
    """`column IN (...)` on SQLite, `column = ANY(array)` on PostgreSQL (one plan for any size)."""
    if sqlite:
        placeholders, params = in_list(prefix, values)
        return f"{column} IN ({placeholders})", params
    return f"{column} = ANY(CAST(:{prefix} AS integer[]))", {prefix: list(values)}


def _matching(
    track_ids: Sequence[int], artist_ids: Sequence[int], sqlite: bool
) -> list[tuple[str, str, dict[str, object]]]:
    """One (FROM, condition, parameters) per kind of key: plays of the tracks, plays of the
    artists' tracks. Asked apart, each seeks its index; as one OR with a subquery PostgreSQL
    walked every play by time instead (150 ms at a million plays)."""
    tracks, artists = list(track_ids)[:MAX_KEYS], list(artist_ids)[:MAX_KEYS]
    out: list[tuple[str, str, dict[str, object]]] = []
    if tracks:
        out.append(("play_log p", *_keys("p.track_id", tracks, sqlite, "t")))
    if artists:
        joined = "play_log p JOIN track_artists ta ON ta.track_id = p.track_id"
        out.append((joined, *_keys("ta.artist_id", artists, sqlite, "a")))
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
    `artist_ids`, the song that started most recently first; one play per show."""
    steps = playing_now_steps(is_sqlite(db), track_ids, artist_ids, now, limit)
    return await run_one(db, steps)


def playing_now_steps(
    sqlite: bool,
    track_ids: Sequence[int],
    artist_ids: Sequence[int],
    now: datetime,
    limit: int,
) -> Steps[list[Play]]:
    """`playing_now` as steps.

    The open rows are one per live show at most (two in a crossfade): a song popular on air
    has a thousand. Those that match are read from the on-air index, each show checked live
    by its key, and only the latest few sorted out. On SQLite the plan is held to that: a
    CROSS JOIN keeps shows (whose status index would tempt it into visiting every live show)
    inside, and `+` keeps the log's time index from being walked for the ORDER BY."""
    if limit <= 0:
        return []
    rows: list[tuple[int, int, datetime]] = []
    latest = "+p.started_at" if sqlite else "p.started_at"
    for source, matching, params in _matching(track_ids, artist_ids, sqlite):
        sql = (
            f"SELECT p.show_id, p.track_id, p.started_at FROM {source} CROSS JOIN shows s"
            f" WHERE p.ended_at IS NULL AND {matching} AND p.started_at <= :now"
            f" AND s.id = p.show_id AND s.status = :live"
            f" ORDER BY {latest} DESC LIMIT {2 * limit:d}"
        )
        bound = {**params, "now": _bound(now, sqlite), "live": ShowStatus.live.value}
        rows.extend((r[0], r[1], _stamp(r[2])) for r in (yield Statement(sql, bound)))
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
    play first; one play (the latest) per show, none of `exclude_shows` (those playing it now)."""
    steps = recently_played_steps(
        is_sqlite(db), track_ids, artist_ids, now, within, limit, exclude_shows
    )
    return await run_one(db, steps)


def recently_played_steps(
    sqlite: bool,
    track_ids: Sequence[int],
    artist_ids: Sequence[int],
    now: datetime,
    within: timedelta,
    limit: int,
    exclude_shows: Sequence[int] = (),
) -> Steps[list[Play]]:
    """`recently_played` as steps.

    A popular song has tens of thousands of plays, so each track's are read from its end of
    the index (track, start, show, end), its latest RECENT_PER_TRACK only: bounded work
    however long the log, rather than every play sorted. An artist counts with their first
    MAX_ARTIST_TRACKS songs."""
    if limit <= 0:
        return []
    artist_tracks: list[int] = []
    if artist_ids:
        artists, params = _keys("artist_id", list(artist_ids)[:MAX_KEYS], sqlite, "a")
        sql = f"SELECT track_id FROM track_artists WHERE {artists} LIMIT {MAX_ARTIST_TRACKS:d}"
        artist_tracks = [r[0] for r in (yield Statement(sql, params))]
    tracks = list(dict.fromkeys([*list(track_ids)[:MAX_KEYS], *artist_tracks]))
    # Each play with its show's status, read by the show's key in the same statement.
    rows: list[tuple[int, int, datetime, datetime | None]] = []
    status: dict[int, ShowStatus] = {}
    bound = _bound(now, sqlite)
    if not sqlite:
        statements = [Statement(_LATEST_PLAYS_LATERAL, {"tracks": tracks, "now": bound})]
    else:
        statements = []
        for start in range(0, len(tracks), UNION_CHUNK):
            chunk = tracks[start : start + UNION_CHUNK]
            params = {f"t{i}": t for i, t in enumerate(chunk)}
            statements.append(Statement(_latest_plays(len(chunk)), {**params, "now": bound}))
    for statement in statements:
        for row in (yield statement):
            rows.append(_play_row(row[:4]))
            status[row[0]] = ShowStatus(row[4])
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


def _play_row(row: Sequence[object]) -> tuple[int, int, datetime, datetime | None]:
    show_id, track_id, started_at, ended_at = row
    assert isinstance(show_id, int) and isinstance(track_id, int)
    return show_id, track_id, _stamp(started_at), None if ended_at is None else _stamp(ended_at)


# PostgreSQL: one lateral seek per track, a plan of the same small size for any number.
_LATEST_PLAYS_LATERAL = (
    "SELECT p.show_id, p.track_id, p.started_at, p.ended_at, s.status"
    " FROM unnest(CAST(:tracks AS integer[])) AS t(id) CROSS JOIN LATERAL"
    " (SELECT show_id, track_id, started_at, ended_at FROM play_log"
    "  WHERE track_id = t.id AND started_at <= :now"
    f"  ORDER BY started_at DESC LIMIT {RECENT_PER_TRACK}) AS p"
    " JOIN shows s ON s.id = p.show_id"
)


@functools.cache
def _latest_plays(tracks: int) -> str:
    """SQLite (no LATERAL): each of `tracks` tracks' latest plays, one index seek per track
    in one statement; written out once per size."""
    one = (
        "SELECT * FROM (SELECT show_id, track_id, started_at, ended_at FROM play_log"
        " WHERE track_id = :t{i} AND started_at <= :now"
        f" ORDER BY started_at DESC LIMIT {RECENT_PER_TRACK}) AS p{{i}}"
    )
    plays = " UNION ALL ".join(one.format(i=i) for i in range(tracks))
    return (
        "SELECT u.show_id, u.track_id, u.started_at, u.ended_at, s.status"
        f" FROM ({plays}) AS u CROSS JOIN shows s WHERE s.id = u.show_id"
    )
