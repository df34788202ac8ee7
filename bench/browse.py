"""Browse query latency: live shows by listeners, a genre ranked by match, trending hashtags.

Builds a database of `--shows` shows (a tenth of them live, with listener counts, genre time
and hashtags drawn from a Zipf-like vocabulary) and a play log of `--plays` songs heard in the
last 24 hours, by bulk inserts straight into the tables; then times the service calls the
pages and the API make (the list with each show's API form built, as `GET /api/v1/shows`
answers) and prints p50/p95 per query, on SQLite and, when it answers on 127.0.0.1:5432, on
PostgreSQL in the same run.

    .venv/bin/python bench/browse.py                       # 100,000 shows, 240,000 plays
    .venv/bin/python bench/browse.py --shows 20000 --plays 50000 --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.accounts.models import User  # noqa: E402
from onair.catalog.models import Genre, Track, TrackGenre  # noqa: E402
from onair.db.base import make_engine, make_sessionmaker  # noqa: E402
from onair.db.migrate import upgrade_async  # noqa: E402
from onair.royalties.models import PlayLog  # noqa: E402
from onair.shows import service as shows  # noqa: E402
from onair.shows.browse import service as browse  # noqa: E402
from onair.shows.browse.models import ShowGenreSeconds  # noqa: E402
from onair.shows.models import Show, ShowHashtag, ShowStatus  # noqa: E402
from onair.shows.router import ShowOut  # noqa: E402

console = Console(stderr=True)
GENRES = ("Jazz", "Electronic", "Rock", "Pop", "Hip Hop", "Classical", "World", "Funk", "Folk")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# 2,000 hashtags by Zipf's law: tag0 is on about 12 % of the tagged shows, tag50 on 0.2 %.
TAGS = range(2000)
TAG_WEIGHTS = [1 / (rank + 1) for rank in TAGS]


def _zipf(rng: random.Random, n: int) -> int:
    return min(n - 1, int(rng.paretovariate(1.1)) - 1)


async def _chunks(db: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 5000):
        await db.execute(insert(table), rows[i : i + 5000])


async def build(sessions: async_sessionmaker[AsyncSession], n_shows: int, n_plays: int) -> None:
    rng = random.Random(6)
    async with sessions() as db:
        await _chunks(
            db,
            Genre,
            [
                {"id": i + 1, "name": g, "slug": g.lower().replace(" ", "-")}
                for i, g in enumerate(GENRES)
            ],
        )
        await _chunks(
            db,
            User,
            [
                {
                    "id": i + 1,
                    "username": f"host{i}",
                    "email": f"host{i}@example.org",
                    "display_name": f"Host {i}",
                    "password_hash": "x",
                    "role": "listener",
                    "created_at": NOW,
                }
                for i in range(2000)
            ],
        )
        await _chunks(
            db,
            Track,
            [
                {
                    "id": i + 1,
                    "title": f"Song {i}",
                    "source": "bench",
                    "source_key": f"bench:{i}",
                    "created_at": NOW,
                    "explicit": False,
                }
                for i in range(1000)
            ],
        )
        await _chunks(
            db,
            TrackGenre,
            [{"track_id": i + 1, "genre_id": i % len(GENRES) + 1} for i in range(1000)],
        )
        show_rows, tag_rows, genre_rows = [], [], []
        for i in range(n_shows):
            live = i % 10 == 0
            ended = not live and i % 3 != 0
            started = NOW - timedelta(hours=rng.uniform(0, 72))
            played = rng.uniform(0, 7200) if (live or ended) else 0.0
            claimed = rng.randrange(len(GENRES)) + 1
            show_rows.append(
                {
                    "id": i + 1,
                    "host_id": i % 2000 + 1,
                    "title": f"Show {i}",
                    "description": "",
                    "genre_id": claimed,
                    "status": (
                        ShowStatus.live
                        if live
                        else ShowStatus.ended
                        if ended
                        else ShowStatus.scheduled
                    ).value,
                    "scheduled_start": NOW + timedelta(hours=rng.uniform(-1, 96)),
                    "started_at": started if (live or ended) else None,
                    "ended_at": started + timedelta(hours=2) if ended else None,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "listeners_now": _zipf(rng, 5000) if live else 0,
                    "listeners_peak": _zipf(rng, 5000),
                    "played_seconds": played,
                }
            )
            tags = rng.choices(TAGS, weights=TAG_WEIGHTS, k=rng.randint(0, 4))
            for pos, tag in enumerate(dict.fromkeys(tags)):
                tag_rows.append({"show_id": i + 1, "tag": f"tag{tag}", "position": pos})
            if played:
                main = claimed if rng.random() < 0.7 else rng.randrange(len(GENRES)) + 1
                genre_rows.append(
                    {"show_id": i + 1, "genre_id": main, "seconds": played * rng.uniform(0.4, 1)}
                )
                other = main % len(GENRES) + 1
                genre_rows.append({"show_id": i + 1, "genre_id": other, "seconds": played * 0.2})
        await _chunks(db, Show, show_rows)
        await _chunks(db, ShowHashtag, tag_rows)
        await _chunks(db, ShowGenreSeconds, genre_rows)
        on_air = [r["id"] for r in show_rows if r["status"] != "scheduled"]
        await _chunks(
            db,
            PlayLog,
            [
                {
                    "show_id": rng.choice(on_air),
                    "track_id": rng.randrange(1000) + 1,
                    "started_at": NOW - timedelta(seconds=rng.uniform(0, 86400)),
                    "seconds_played": 200.0,
                    "listeners_at_start": 3,
                    "listener_seconds": 600.0,
                    "peak_listeners": 3,
                    "auto_dj": False,
                    "skipped": False,
                }
                for _ in range(n_plays)
            ],
        )
        await db.commit()
        if db.bind.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk load; plans without it are not real ones.
            await db.execute(text("ANALYZE"))
            await db.commit()


async def _time(call: Callable[[], Awaitable[object]], rounds: int) -> tuple[float, float]:
    await call()  # warm
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95) - 1]


async def measure(
    sessions: async_sessionmaker[AsyncSession], rounds: int
) -> dict[str, tuple[float, float]]:
    async with sessions() as db:

        def listed(**kw: Any) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                found = await shows.list_shows(db, now=NOW, limit=24, **kw)
                db.expunge_all()
                return [ShowOut.of(s) for s in found]

            return call

        async def trending() -> object:
            return await browse.trending_hashtags(db, NOW, limit=12)

        def summary(tag: str) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                return await browse.hashtag_summary(db, tag, NOW)

            return call

        queries: dict[str, Callable[[], Awaitable[object]]] = {
            "live by listeners, page 1": listed(status="live", sort="listeners"),
            "live by listeners, offset 5000": listed(status="live", sort="listeners", offset=5000),
            "live in a genre, by match": listed(status="live", genre="jazz"),
            "recent in a genre, by match": listed(status="recent", genre="jazz"),
            "upcoming, soonest first": listed(status="upcoming"),
            "a hashtag's live shows (tag0)": listed(
                status="live", hashtag="tag0", sort="listeners"
            ),
            "trending hashtags (24 h)": trending,
            "a hashtag's summary (tag0, the top)": summary("tag0"),
            "a hashtag's summary (tag50)": summary("tag50"),
        }
        return {name: await _time(call, rounds) for name, call in queries.items()}


async def run_on(url: str, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    await upgrade_async(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        start = time.perf_counter()
        await build(sessions, args.shows, args.plays)
        console.print(f"built {url.split(':')[0]} in {time.perf_counter() - start:.0f} s")
        return await measure(sessions, args.rounds)
    finally:
        await engine.dispose()


async def _postgres(args: argparse.Namespace) -> dict[str, tuple[float, float]] | None:
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        console.print("PostgreSQL not reachable on 127.0.0.1:5432: SQLite only")
        return None
    name = f"onair_bench_browse_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await run_on(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shows", type=int, default=100_000)
    parser.add_argument("--plays", type=int, default=240_000, help="play log rows in the last 24 h")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"SQLite": await run_on(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", args)}
    pg = await _postgres(args)
    if pg is not None:
        results["PostgreSQL"] = pg
    live = args.shows // 10
    title = f"browse: {args.shows:,} shows ({live:,} live), {args.plays:,} plays in 24 h; ms"
    table = Table(title=title)
    table.add_column("query")
    for db in results:
        table.add_column(f"{db} p50", justify="right")
        table.add_column(f"{db} p95", justify="right")
    for name in next(iter(results.values())):
        cells = [f"{v:.1f}" for db in results for v in results[db][name]]
        table.add_row(name, *cells)
    Console(width=140).print(table)


if __name__ == "__main__":
    asyncio.run(main())
