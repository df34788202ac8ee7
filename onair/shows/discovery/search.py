"""The one search box: shows, hosts, hashtags, artists and songs for what is typed, and the
shows playing (or that just played) the songs and artists found.

Every group is a search of its own index with the catalog's engine, so each is folded, matched
as it is typed and forgiving of one typo per word in the same way. Shows are asked band by
band (live, upcoming, past), so live shows lead. What is playing comes from the play log
(`playing.py`): what listeners have heard, never what a queue holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog import search
from onair.catalog import service as catalog
from onair.catalog.models import Artist, Track
from onair.shows.discovery import playing
from onair.shows.discovery.index import BANDS, HASHTAGS, HOSTS, SHOWS
from onair.shows.discovery.playing import Play
from onair.shows.models import Show

MAX_QUERY_LENGTH = 200
SHOWS_PER_STATUS = 5
HOSTS_LIMIT = 6
HASHTAGS_LIMIT = 8
ARTISTS_LIMIT = 6
TRACKS_LIMIT = 10
# The songs whose plays are looked up: more than are listed, so a show playing the 30th best
# match for "love" is still found; and the artists.
PLAYED_TRACKS = 20
PLAYED_ARTISTS = 10
PLAYING_LIMIT = 20
RECENT_LIMIT = 20
# The search box lists fewer of them than a song's or an artist's page.
BOX_PLAYING_LIMIT = 10
BOX_RECENT_LIMIT = 10


@dataclass(frozen=True)
class HashtagHit:
    tag: str
    shows: int


@dataclass(frozen=True)
class PlayHit:
    """A show and what it plays (or played) of what was searched."""

    show: Show
    track: Track
    play: Play


@dataclass
class Results:
    query: str
    shows: list[Show] = field(default_factory=list)
    hosts: list[User] = field(default_factory=list)
    hashtags: list[HashtagHit] = field(default_factory=list)
    artists: list[Artist] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    playing_now: list[PlayHit] = field(default_factory=list)
    recently_played: list[PlayHit] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.shows
            or self.hosts
            or self.hashtags
            or self.artists
            or self.tracks
            or self.playing_now
            or self.recently_played
        )


async def search_shows(
    db: AsyncSession, query: str, *, per_status: int = SHOWS_PER_STATUS
) -> list[Show]:
    """Shows matching `query`: the best live ones, then upcoming, then past."""
    ids = await _show_ids(db, query, per_status)
    return _in_status_order(ids, await _load_shows(db, ids))


async def _show_ids(db: AsyncSession, query: str, per_status: int) -> list[int]:
    return await search.run_one(db, _show_id_steps(query, search.is_sqlite(db), per_status))


def _show_id_steps(query: str, sqlite: bool, per_status: int) -> search.Steps[list[int]]:
    bands = yield from search.bands_steps(
        SHOWS, query, sqlite, sorted(BANDS.values()), limit=per_status, fill=1
    )
    return [i for band in sorted(bands) for i in bands[band]]


async def _load_shows(db: AsyncSession, ids: Iterable[int]) -> dict[int, Show]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {s.id: s for s in (await db.scalars(select(Show).where(Show.id.in_(wanted)))).unique()}


def _in_status_order(ids: Sequence[int], found: Mapping[int, Show]) -> list[Show]:
    shows = [found[i] for i in ids if i in found]
    # An index entry a moment behind a status change still lists the show in its real group.
    return sorted(shows, key=lambda s: BANDS[s.status])


async def search_hosts(db: AsyncSession, query: str, *, limit: int = HOSTS_LIMIT) -> list[User]:
    return await _load_hosts(db, await search.search_ids(db, HOSTS, query, limit=limit, fill=1))


async def _load_hosts(db: AsyncSession, ids: list[int]) -> list[User]:
    if not ids:
        return []
    found = {u.id: u for u in await db.scalars(select(User).where(User.id.in_(ids)))}
    return [found[i] for i in ids if i in found and found[i].banned_at is None]


async def search_hashtags(
    db: AsyncSession, query: str, *, limit: int = HASHTAGS_LIMIT
) -> list[HashtagHit]:
    """Hashtags matching `query` that some show still carries, with how many shows do."""
    ids = await search.search_ids(db, HASHTAGS, _tag_query(query), limit=limit * 2, fill=1)
    return await _count_hashtags(db, ids, limit)


def _tag_query(query: str) -> str:
    return query.replace("#", " ")


async def _count_hashtags(db: AsyncSession, ids: list[int], limit: int) -> list[HashtagHit]:
    if not ids:
        return []
    # Each tag with the number of shows still carrying it (none: no longer anyone's).
    stmt = text(
        "SELECT t.id, t.tag, count(*) FROM hashtag_search_tags t"
        " JOIN show_hashtags h ON h.tag = t.tag WHERE t.id IN :ids GROUP BY t.id, t.tag"
    ).bindparams(bindparam("ids", expanding=True))
    counted = {tag_id: (tag, n) for tag_id, tag, n in await db.execute(stmt, {"ids": ids})}
    hits = [HashtagHit(*counted[i]) for i in ids if i in counted]
    return hits[:limit]


async def search_artists(
    db: AsyncSession, query: str, *, limit: int = ARTISTS_LIMIT
) -> list[Artist]:
    ids = await search.search_ids(db, search.ARTISTS, query, limit=limit, fill=1)
    return await _load_artists(db, ids)


async def _load_artists(db: AsyncSession, ids: list[int]) -> list[Artist]:
    if not ids:
        return []
    found = {a.id: a for a in await db.scalars(select(Artist).where(Artist.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


async def plays_of(
    db: AsyncSession,
    *,
    track_ids: list[int],
    artist_ids: list[int],
    now: datetime,
    within: timedelta,
    playing_limit: int = PLAYING_LIMIT,
    recent_limit: int = RECENT_LIMIT,
) -> tuple[list[PlayHit], list[PlayHit]]:
    """Who is playing these tracks (or these artists) now, and who played them lately."""
    now_plays, recent = await _plays(
        db, track_ids, artist_ids, now, within, playing_limit, recent_limit
    )
    plays = [*now_plays, *recent]
    shows = await _load_shows(db, (p.show_id for p in plays))
    tracks = await _load_tracks(db, (p.track_id for p in plays))
    return _hits(now_plays, shows, tracks), _hits(recent, shows, tracks)


async def _plays(
    db: AsyncSession,
    track_ids: list[int],
    artist_ids: list[int],
    now: datetime,
    within: timedelta,
    playing_limit: int,
    recent_limit: int,
) -> tuple[list[Play], list[Play]]:
    steps = _plays_steps(
        search.is_sqlite(db), track_ids, artist_ids, now, within, playing_limit, recent_limit
    )
    return await search.run_one(db, steps)


def _plays_steps(
    sqlite: bool,
    track_ids: list[int],
    artist_ids: list[int],
    now: datetime,
    within: timedelta,
    playing_limit: int,
    recent_limit: int,
) -> search.Steps[tuple[list[Play], list[Play]]]:
    now_plays = yield from playing.playing_now_steps(
        sqlite, track_ids, artist_ids, now, playing_limit
    )
    recent = yield from playing.recently_played_steps(
        sqlite,
        track_ids,
        artist_ids,
        now,
        within,
        recent_limit,
        exclude_shows=[p.show_id for p in now_plays],
    )
    return now_plays, recent


async def _load_tracks(db: AsyncSession, ids: Iterable[int]) -> dict[int, Track]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {t.id: t for t in await catalog.tracks_by_ids(db, wanted)}


def _hits(
    plays: list[Play], shows: Mapping[int, Show], tracks: Mapping[int, Track]
) -> list[PlayHit]:
    return [
        PlayHit(shows[p.show_id], tracks[p.track_id], p)
        for p in plays
        if p.show_id in shows and p.track_id in tracks
    ]


async def discover(
    db: AsyncSession,
    query: str,
    *,
    now: datetime,
    recent: timedelta = timedelta(hours=6),
) -> Results:
    """Everything the search box shows for `query` at `now`; `recent` is how far back
    "recently played" looks for shows still live (ended shows' setlists count at any age)."""
    results = Results(query=query)
    if not search.tokens(query):
        return results
    # Every index searched in one go (on SQLite, one trip to the database's thread).
    sqlite = search.is_sqlite(db)
    show_ids, host_ids, tag_ids, artist_ids, track_ids = await search.run_steps(
        db,
        [
            _show_id_steps(query, sqlite, SHOWS_PER_STATUS),
            search.ids_steps(HOSTS, query, sqlite, HOSTS_LIMIT, fill=1),
            search.ids_steps(HASHTAGS, _tag_query(query), sqlite, HASHTAGS_LIMIT * 2, fill=1),
            search.ids_steps(search.ARTISTS, query, sqlite, PLAYED_ARTISTS, fill=1),
            search.ids_steps(search.TRACKS, query, sqlite, PLAYED_TRACKS, fill=TRACKS_LIMIT),
        ],
    )
    results.hosts = await _load_hosts(db, host_ids)
    results.hashtags = await _count_hashtags(db, tag_ids, HASHTAGS_LIMIT)
    results.artists = await _load_artists(db, artist_ids)
    now_plays, recent_plays = await _plays(
        db,
        track_ids,
        [a.id for a in results.artists],
        now,
        recent,
        BOX_PLAYING_LIMIT,
        BOX_RECENT_LIMIT,
    )
    # Every show and song on the page, each read once (a statement costs more than its rows).
    plays = [*now_plays, *recent_plays]
    shows = await _load_shows(db, [*show_ids, *(p.show_id for p in plays)])
    tracks = await _load_tracks(db, [*track_ids[:TRACKS_LIMIT], *(p.track_id for p in plays)])
    results.shows = _in_status_order(show_ids, shows)
    results.tracks = [tracks[i] for i in track_ids[:TRACKS_LIMIT] if i in tracks]
    results.playing_now = _hits(now_plays, shows, tracks)
    results.recently_played = _hits(recent_plays, shows, tracks)
    results.artists = results.artists[:ARTISTS_LIMIT]
    return results
