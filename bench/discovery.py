"""Discovery latency: the one search box and "who is playing this now", on SQLite and PostgreSQL.

The world (built once, cached under bench/out/ and in the PostgreSQL database
``onair_bench_discovery``): the 1,000,000-track catalog of bench/catalog_search.py (freemusi.cc,
the demo songs and generated tracks), then 20,000 hosts and 100,000 shows made here with plain
bulk inserts: 10,000 live (each in its fifth song, whose play-log row is open), 10,000 scheduled
and 80,000 ended, each with a title, a description, a genre, one to three hashtags from a
Zipf-distributed tag vocabulary, and a setlist in the play log (twelve songs per ended show, most
drawn from a popular head of the catalog as real airplay is). The PostgreSQL copy is loaded from
the SQLite one with COPY and indexed by the same code the app runs.

Then, on both databases in the same run, it times (each query's best of ``--passes``):

- the search box, as the app calls it: show titles, host names, hashtags, song titles and
  artist names as typed, as a prefix still being typed, and with one typo;
- "who is playing this now": the live shows playing a song, and playing any song of an artist,
  for songs and artists that are on air right now in one of the 10,000 live shows.

Targets (issue 6): search p95 under 20 ms, "who is playing this now" p95 under 5 ms, on both.

    .venv/bin/python bench/discovery.py
    .venv/bin/python bench/discovery.py --queries 100 --skip-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import catalog_search as catalog_bench
import sqlalchemy as sa
from machine import cpu_model
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.db.base import Base, make_engine, make_sessionmaker  # noqa: E402
from onair.db.migrate import upgrade  # noqa: E402

OUT = ROOT / "bench" / "out"
# Bump when the generator or the schema changes, so cached worlds are rebuilt.
BUILD_VERSION = 1
PG_DATABASE = "onair_bench_discovery"
PG_ADMIN = os.environ.get("ONAIR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # the world's "now": live shows started before it
HOSTS = 20_000
LIVE, UPCOMING, ENDED = 10_000, 10_000, 80_000
SETLIST = 12
LIVE_SONG_INDEX = 4  # live shows are in their fifth song
POPULAR = 30_000  # most airplay comes from this many tracks
SHOW_WORDS = catalog_bench.split_words("""
show hour radio sessions live mix club corner lounge night morning breakfast drive weekly
selects hits classics underground radar calling frequency transmission diaries tapes
""")

console = Console(stderr=True)


def stamp(value: datetime) -> str:
    """A UTC timestamp as SQLAlchemy writes it to SQLite."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# --- building: SQLite --------------------------------------------------------------------------


def generate_shows(path: Path, seed: int) -> None:
    """Hosts, shows, hashtags and play logs appended to the catalog with sqlite3 bulk inserts."""
    rng = random.Random(seed)
    vocab = catalog_bench.Vocabulary.make(rng, 20_000)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    top_track = db.execute("SELECT max(id) FROM tracks").fetchone()[0]
    genres = [row[0] for row in db.execute("SELECT id FROM genres ORDER BY id")]
    durations = dict(
        db.execute("SELECT id, coalesce(duration_s, 200) FROM tracks WHERE id <= ?", (POPULAR,))
    )
    tags = catalog_bench.Zipf.of(
        [w.lower() for w in vocab.words.items[60:1500]] + [g.lower() for g in catalog_bench.GENRES]
    )
    first_user = db.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0] + 1
    created = stamp(NOW - timedelta(days=400))
    users = []
    taken: set[str] = set()
    for k in range(HOSTS):
        name = (
            vocab.artist(rng)
            if rng.random() < 0.3
            else (f"{vocab.first_names.draw(rng)[0]} {vocab.surnames.draw(rng)[0]}")
        )
        base = "".join(c for c in catalog_bench.search.search_fold(name) if c.isalnum())[:24]
        username = base or "host"
        while username in taken:
            username = f"{base[:24]}{rng.randint(1, 9999)}"
        taken.add(username)
        uid = first_user + k
        users.append(
            (uid, username, name[:64], f"{username}@bench.invalid", "x", "listener", created)
        )
    db.executemany(
        "INSERT INTO users (id, username, display_name, email, password_hash, role, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        users,
    )

    hits = itertools.accumulate(1.0 / (rank + 2.7) for rank in range(POPULAR))
    hit_weights = list(hits)
    host_weights = list(itertools.accumulate(1.0 / (rank + 2.7) ** 0.8 for rank in range(HOSTS)))

    def song() -> int:
        if rng.random() < 0.8:  # most airplay is a Zipf-shaped head of hits
            return rng.choices(range(1, POPULAR + 1), cum_weights=hit_weights)[0]
        return rng.randint(1, top_track)

    first_show = db.execute("SELECT coalesce(max(id), 0) FROM shows").fetchone()[0] + 1
    first_play = db.execute("SELECT coalesce(max(id), 0) FROM play_log").fetchone()[0] + 1
    shows, hashtags, plays = [], [], []
    play_id = first_play
    total = LIVE + UPCOMING + ENDED
    with catalog_bench.progress() as bar:
        task = bar.add_task(f"Generating {total:,} shows", total=total)
        for k in range(total):
            sid = first_show + k
            host = first_user + rng.choices(range(HOSTS), cum_weights=host_weights)[0]
            title = vocab.title(rng)
            if rng.random() < 0.6:
                title += " " + rng.choice(SHOW_WORDS).capitalize()
            description = f"{vocab.title(rng)} and {vocab.title(rng).lower()}, every week."
            genre = rng.choice(genres)
            if k < LIVE:
                status, started = "live", NOW - timedelta(minutes=rng.randint(20, 180))
                scheduled, ended = None, None
            elif k < LIVE + UPCOMING:
                status, started, ended = "scheduled", None, None
                scheduled = NOW + timedelta(minutes=rng.randint(10, 14 * 24 * 60))
            else:
                status = "ended"
                started = NOW - timedelta(minutes=rng.randint(200, 365 * 24 * 60))
                ended = started + timedelta(minutes=rng.randint(30, 180))
                scheduled = None
            shows.append(
                (
                    sid,
                    host,
                    title[:120],
                    description,
                    genre,
                    status,
                    stamp(scheduled) if scheduled else None,
                    stamp(started) if started else None,
                    stamp(ended) if ended else None,
                    created,
                    created,
                )
            )
            for position, tag in enumerate(dict.fromkeys(tags.draw(rng, rng.randint(1, 3)))):
                hashtags.append((sid, tag[:64], position))
            if started is not None:
                at = started
                count = SETLIST if status == "ended" else LIVE_SONG_INDEX + 1
                for n in range(count):
                    track = song()
                    seconds = float(durations.get(track, 200))
                    open_row = status == "live" and n == count - 1
                    if open_row:
                        at = NOW - timedelta(seconds=rng.uniform(1, seconds - 1))
                    plays.append(
                        (
                            play_id,
                            sid,
                            track,
                            stamp(at),
                            None if open_row else stamp(at + timedelta(seconds=seconds)),
                            0.0 if open_row else seconds,
                            rng.randint(0, 300),
                        )
                    )
                    play_id += 1
                    at += timedelta(seconds=seconds)
            if len(plays) > 50_000 or k == total - 1:
                _flush(db, shows, hashtags, plays)
                shows, hashtags, plays = [], [], []
                bar.update(task, completed=k + 1)
    # A live show's audience, as the studio keeps it on the show row.
    db.execute(
        "UPDATE shows SET listeners_now = abs(random()) % 400, listeners_peak = 400"
        " WHERE status = 'live'"
    )
    db.commit()
    db.close()


def _flush(db: sqlite3.Connection, shows: list[Any], hashtags: list[Any], plays: list[Any]) -> None:
    db.executemany(
        "INSERT INTO shows (id, host_id, title, description, genre_id, status, scheduled_start,"
        " started_at, ended_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        shows,
    )
    db.executemany("INSERT INTO show_hashtags (show_id, tag, position) VALUES (?, ?, ?)", hashtags)
    db.executemany(
        "INSERT INTO play_log (id, show_id, track_id, started_at, ended_at, seconds_played,"
        " listeners_at_start, listener_seconds, peak_listeners, auto_dj, skipped)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0)",
        plays,
    )
    db.commit()


async def index_world(url: str, *, catalog: bool) -> None:
    """Builds the search indexes over the world with the app's own code: the discovery ones,
    and the catalog's too when `catalog` (the SQLite catalog comes indexed)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            if catalog:
                with catalog_bench.progress() as bar:
                    task = bar.add_task("Indexing tracks and artists", total=None)
                    await catalog_bench.search.rebuild_index(
                        db,
                        batch=10000,
                        on_progress=lambda done, total: bar.update(
                            task, completed=done, total=total
                        ),
                    )
            await rebuild_discovery(db)
            await db.commit()
    finally:
        await engine.dispose()


async def rebuild_discovery(db: AsyncSession) -> None:
    """The show, host and hashtag index (and browse's derived tables) over what was inserted."""
    from onair.shows.discovery.index import rebuild_discovery as rebuild

    started = time.perf_counter()
    await rebuild(db)
    console.print(f"show index built in {time.perf_counter() - started:.1f} s")


def build_sqlite(args: argparse.Namespace) -> Path:
    catalog_args = argparse.Namespace(
        tracks=args.tracks, db=None, seed=1, words=60_000, demo=True, rebuild=False
    )
    _small, big = catalog_bench.build(catalog_args)
    assert big is not None
    path = OUT / f"discovery-{args.tracks}-v{BUILD_VERSION}.db"
    params = {
        "version": BUILD_VERSION,
        "tracks": args.tracks,
        "schema": catalog_bench.schema_fingerprint(),
    }
    if args.rebuild or not catalog_bench.cached(path, params):
        catalog_bench.remove_db(path)
        started = time.perf_counter()
        shutil.copyfile(big, path)
        upgrade(catalog_bench.url_of(path))
        generate_shows(path, seed=7)
        asyncio.run(index_world(catalog_bench.url_of(path), catalog=False))
        catalog_bench.mark_built(path, params)
        console.print(f"SQLite world built in {time.perf_counter() - started:.1f} s")
    return path


# --- building: PostgreSQL ----------------------------------------------------------------------


def pg_url(database: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{database}"


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def pg_build_state() -> str | None:
    """The built world's parameters, None when there is no database; raises when no server."""
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE)
    finally:
        await admin.close()
    if not exists:
        return None
    conn = await asyncpg.connect(pg_url(PG_DATABASE))
    try:
        return (
            await conn.fetchval("SELECT params FROM bench_meta LIMIT 1")
            if await conn.fetchval("SELECT to_regclass('bench_meta')")
            else None
        )
    finally:
        await conn.close()


async def pg_recreate() -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()


def _converter(column: Any) -> Callable[[Any], Any]:
    """SQLite's stored value of `column` as asyncpg wants it for COPY."""
    kind = getattr(column.type, "impl", column.type)  # a TypeDecorator's stored type
    if isinstance(kind, sa.DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, sa.Boolean):
        return lambda v: None if v is None else bool(v)
    return lambda v: v


async def pg_copy(sqlite_path: Path) -> None:
    """Every model table, SQLite → PostgreSQL with COPY, in foreign-key order."""
    import asyncpg

    conn = await asyncpg.connect(pg_url(PG_DATABASE))
    source = sqlite3.connect(sqlite_path)
    try:
        with catalog_bench.progress() as bar:
            for table in Base.metadata.sorted_tables:
                names = [c.name for c in table.columns]
                convert = [_converter(c) for c in table.columns]
                total = source.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
                if not total:
                    continue
                task = bar.add_task(f"COPY {table.name}", total=total)
                cursor = source.execute(f"SELECT {', '.join(names)} FROM {table.name}")
                while rows := cursor.fetchmany(50_000):
                    records = [
                        tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in rows
                    ]
                    await conn.copy_records_to_table(table.name, records=records, columns=names)
                    bar.advance(task, len(rows))
                if "id" in names and len(table.primary_key.columns) == 1:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                        f" (SELECT max(id) FROM {table.name}))"
                    )
        await conn.execute("ANALYZE")
    finally:
        source.close()
        await conn.close()


async def pg_mark(params: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url(PG_DATABASE))
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_meta")
        await conn.execute("CREATE TABLE bench_meta (params text)")
        await conn.execute("INSERT INTO bench_meta VALUES ($1)", params)
        # As autovacuum leaves a database some time after a bulk load or a migration: the
        # visibility map set (an index-only scan need not visit the heap) and counts fresh.
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def build_postgres(sqlite_path: Path, args: argparse.Namespace) -> str | None:
    wanted: dict[str, object] = {
        "version": BUILD_VERSION,
        "tracks": args.tracks,
        "sqlite": sqlite_path.name,
        "schema": catalog_bench.schema_fingerprint(),
    }
    params = json.dumps(wanted)
    try:
        state = asyncio.run(pg_build_state())
    except (OSError, TimeoutError) as exc:
        console.print(f"[yellow]no PostgreSQL at {PG_ADMIN} ({exc}); skipping it[/yellow]")
        return None
    url = sqlalchemy_url(pg_url(PG_DATABASE))
    built = json.loads(state) if state else {}
    if not args.rebuild and state != params and catalog_bench.follows_migrations(built, wanted):
        upgrade(url)  # only migrations written since it was built
        asyncio.run(pg_mark(params))
    elif args.rebuild or state != params:
        started = time.perf_counter()
        asyncio.run(pg_recreate())
        upgrade(url)
        asyncio.run(pg_copy(sqlite_path))
        asyncio.run(index_world(url, catalog=True))
        asyncio.run(pg_mark(params))
        console.print(f"PostgreSQL world built in {time.perf_counter() - started:.1f} s")
    return url


# --- measuring ---------------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def typed(rng: random.Random, text: str) -> tuple[str, str, str]:
    """What a user types for `text`: its first two words, them with the last one still being
    typed, and them with one slip in a long word."""
    words = catalog_bench.search.tokens(text)[:2] or ["x"]
    whole = " ".join(words)
    last = words[-1]
    prefix = " ".join([*words[:-1], last[: max(1, rng.randint(len(last) // 2, len(last)))]])
    long_words = [i for i, w in enumerate(words) if len(w) >= catalog_bench.search.TYPO_MIN_LENGTH]
    if long_words:
        i = rng.choice(long_words)
        slipped = [*words]
        slipped[i] = catalog_bench.typo(rng, slipped[i])
        wrong = " ".join(slipped)
    else:
        wrong = whole
    return whole, prefix, wrong


@dataclass
class Sample:
    search: dict[str, list[str]]
    playing_tracks: list[int]
    playing_artists: list[int]


def make_sample(path: Path, count: int, seed: int) -> Sample:
    rng = random.Random(seed)
    db = sqlite3.connect(path)

    def pick(sql: str) -> list[Any]:
        return [row[0] for row in db.execute(sql + f" ORDER BY random() LIMIT {count}")]

    sources = {
        "show title": pick("SELECT title FROM shows"),
        "host": pick("SELECT display_name FROM users WHERE email LIKE '%@bench.invalid'"),
        "hashtag": pick("SELECT DISTINCT tag FROM show_hashtags"),
        "song on air": pick(
            "SELECT t.title FROM play_log p JOIN tracks t ON t.id = p.track_id"
            " WHERE p.ended_at IS NULL"
        ),
        "artist on air": pick(
            "SELECT a.name FROM play_log p JOIN track_artists ta ON ta.track_id = p.track_id"
            " JOIN artists a ON a.id = ta.artist_id WHERE p.ended_at IS NULL"
        ),
    }
    queries: dict[str, list[str]] = {"as typed": [], "prefix": [], "one typo": []}
    for texts in sources.values():
        for text in texts:
            whole, prefix, wrong = typed(rng, text)
            queries["as typed"].append(whole)
            queries["prefix"].append(prefix)
            queries["one typo"].append(wrong)
    tracks = pick("SELECT track_id FROM play_log WHERE ended_at IS NULL")
    artists = pick(
        "SELECT ta.artist_id FROM play_log p JOIN track_artists ta ON ta.track_id = p.track_id"
        " WHERE p.ended_at IS NULL"
    )
    db.close()
    for kind in queries:
        rng.shuffle(queries[kind])
    return Sample(queries, tracks, artists)


@dataclass(frozen=True)
class Timing:
    kind: str
    best_ms: list[float]
    found: float


async def time_calls(
    db: AsyncSession, kind: str, calls: Sequence[Callable[[], Awaitable[bool]]], passes: int
) -> Timing:
    runs: list[list[float]] = []
    found = 0
    for _ in range(passes):
        samples, found = [], 0
        for call in calls:
            started = time.perf_counter()
            hit = await call()
            samples.append((time.perf_counter() - started) * 1000)
            found += hit
        runs.append(samples)
    return Timing(kind, [min(t) for t in zip(*runs, strict=True)], found / max(1, len(calls)))


async def measure(url: str, sample: Sample, passes: int) -> list[Timing]:
    from onair.shows.discovery.playing import playing_now
    from onair.shows.discovery.search import discover

    engine = make_engine(url)
    timings: list[Timing] = []
    try:
        async with make_sessionmaker(engine)() as db:

            def searching(q: str) -> Callable[[], Awaitable[bool]]:
                async def call() -> bool:
                    return not (await discover(db, q, now=NOW)).empty

                return call

            def on_track(track_id: int) -> Callable[[], Awaitable[bool]]:
                async def call() -> bool:
                    return bool(await playing_now(db, track_ids=[track_id], now=NOW))

                return call

            def on_artist(artist_id: int) -> Callable[[], Awaitable[bool]]:
                async def call() -> bool:
                    return bool(await playing_now(db, artist_ids=[artist_id], now=NOW))

                return call

            warm = next(iter(sample.search.values()))[:50]
            for q in warm:
                await searching(q)()
            for kind, batch in sample.search.items():
                timings.append(
                    await time_calls(db, f"search: {kind}", [searching(q) for q in batch], passes)
                )
            timings.append(
                await time_calls(
                    db, "playing now: a song", [on_track(t) for t in sample.playing_tracks], passes
                )
            )
            timings.append(
                await time_calls(
                    db,
                    "playing now: an artist",
                    [on_artist(a) for a in sample.playing_artists],
                    passes,
                )
            )
    finally:
        await engine.dispose()
    return timings


def report(title: str, timings: list[Timing], passes: int) -> None:
    table = Table(title=title, caption=f"ms; each query's best of {passes} passes")
    for column in ("query", "n", "found", "p50", "p95", "p99", "max", "target"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for t in timings:
        target = 5.0 if t.kind.startswith("playing") else 20.0
        p95 = percentile(t.best_ms, 95)
        table.add_row(
            t.kind,
            str(len(t.best_ms)),
            f"{t.found:.0%}",
            f"{statistics.median(t.best_ms):.2f}",
            f"[{'green' if p95 < target else 'red'}]{p95:.2f}[/]",
            f"{percentile(t.best_ms, 99):.2f}",
            f"{max(t.best_ms):.2f}",
            f"p95 < {target:g}",
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracks", type=int, default=1_000_000, help="generated tracks")
    parser.add_argument("--queries", type=int, default=60, help="texts per source, per kind")
    parser.add_argument("--passes", type=int, default=3, help="runs of each query (best kept)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached worlds")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = build_sqlite(args)
    pg = None if args.skip_postgres else build_postgres(path, args)
    sample = make_sample(path, args.queries, seed=11)
    console.print(
        "examples: "
        + "; ".join(f"{k}: {', '.join(map(repr, v[:3]))}" for k, v in sample.search.items())
    )
    size = (
        sqlite3.connect(path)
        .execute(
            "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM shows),"
            " (SELECT count(*) FROM shows WHERE status = 'live'), (SELECT count(*) FROM play_log)"
        )
        .fetchone()
    )
    world = f"{size[0]:,} tracks, {size[1]:,} shows ({size[2]:,} live), {size[3]:,} plays"
    console.print(f"{cpu_model()}, {os.cpu_count()} CPUs; {world}")
    for name, url in (("SQLite", catalog_bench.url_of(path)), ("PostgreSQL", pg)):
        if url is None:
            continue
        load = os.getloadavg()[0]
        timings = asyncio.run(measure(url, sample, args.passes))
        report(f"{name}: {world} (load {load:.1f})", timings, args.passes)


if __name__ == "__main__":
    main()
