"""The search engine on PostgreSQL (migration 0009's lexemes and rank_key) answers as it does
on SQLite (FTS5): the same documents give the same results in the same order, for words typed
whole, as prefixes, with a typo or without their accents, in every band of an index."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog import pg_plans, search
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade_async
from onair.shows.discovery.index import SHOWS
from tests.discovery.search_world import World

pytestmark = pytest.mark.postgres

# Few words, so that common ones match hundreds of tracks (the placements' path) and rare ones
# a handful (scored whole); accented, so that folding is part of every answer.
WORDS = [
    "love", "lovely", "lover", "night", "nights", "café", "señor", "blue", "blues", "dance",
    "dancer", "the", "of", "sugar", "plum", "fairy", "über", "straße", "jóga", "moon", "river",
    "rivers", "light", "lights", "heart", "a", "you", "me", "øresund", "zebra",
]  # fmt: skip
QUERIES = [
    "love", "lov", "l", "the", "the lo", "love night", "night love", "cafe", "CAFÉ", "senor blu",
    "uber", "strasse", "jog", "oresund", "dancr", "lvoe", "nigth", "blue moon", "moon r",
    "a", "a l", "the the", "you me", "zebr", "fairy plum sugar", "hart", "lihgt", "rivr",
    "o'love", "love & night", "love:*", "\\blue | !moon", "nothingmatches", "x",
]  # fmt: skip


@pytest.fixture
async def both(postgres_url: str, tmp_path: Path) -> AsyncIterator[list[AsyncSession]]:
    """A SQLite and a PostgreSQL database, migrated; one session on each."""
    urls = [f"sqlite+aiosqlite:///{tmp_path / 'same.db'}", postgres_url]
    engines = []
    sessions = []
    for url in urls:
        await upgrade_async(url)
        engine = make_engine(url)
        engines.append(engine)
        sessions.append(make_sessionmaker(engine)())
    yield sessions
    for session in sessions:
        await session.close()
    for engine in engines:
        await engine.dispose()


def _phrase(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _tracks(count: int) -> list[TrackInput]:
    rng = random.Random(9)
    return [
        TrackInput(
            source="test",
            source_key=f"test:{i}",
            title=_phrase(rng, 1, 5).capitalize(),
            artists=tuple(_phrase(rng, 1, 2) for _ in range(rng.randint(1, 2))),
            album=_phrase(rng, 1, 3) if rng.random() < 0.7 else None,
            genres=(rng.choice(["Pop", "Jazz", "Blues", "Dance"]),),
        )
        for i in range(count)
    ]


async def test_tracks_rank_the_same_on_both_databases(both: list[AsyncSession]) -> None:
    for db in both:
        await CatalogWriter(db, FakeClock()).write(_tracks(600))
        await db.commit()
    for query in QUERIES:
        for limit, offset in ((20, 0), (5, 10), (100, 0)):
            answers = [
                await search.search_track_ids(db, query, limit=limit, offset=offset) for db in both
            ]
            assert answers[1] == answers[0], (query, limit, offset)
    # The fixture is broad enough to mean something: common words fill a page, placements
    # and typo tiers are asked, rare words and nonsense find few or nothing.
    sqlite = both[0]
    assert len(await search.search_track_ids(sqlite, "love", limit=100)) == 100
    assert len(await search.search_track_ids(sqlite, "lvoe")) == 20
    assert await search.search_track_ids(sqlite, "nothingmatches") == []


async def test_a_rebuilt_index_ranks_the_same(both: list[AsyncSession]) -> None:
    sqlite, postgres = both
    for db in both:
        await CatalogWriter(db, FakeClock()).write(_tracks(300))
        await db.commit()
    before = [await search.search_track_ids(postgres, q) for q in QUERIES]
    assert await search.rebuild_index(postgres, batch=70) == 300
    await postgres.commit()
    assert [await search.search_track_ids(postgres, q) for q in QUERIES] == before
    assert [await search.search_track_ids(sqlite, q) for q in QUERIES] == before
    # Writes after the rebuild go straight into the GIN index again (no pending list).
    sql = "SELECT reloptions FROM pg_class WHERE relname = 'ix_track_search_lexemes'"
    assert await postgres.scalar(text(sql)) == ["fastupdate=off"]


async def test_rank_key_is_the_fts5_rowid(both: list[AsyncSession]) -> None:
    sqlite, postgres = both
    for db in both:
        await CatalogWriter(db, FakeClock()).write(_tracks(200))
        await db.commit()
    fts = dict(
        (await sqlite.execute(text("SELECT rowid & 4294967295, rowid FROM track_search"))).all()
    )
    rows = (await postgres.execute(text("SELECT track_id, rank_key FROM track_search"))).all()
    assert dict(rows) == fts
    assert len(fts) == 200


async def test_lexemes_are_the_indexed_words_by_column(both: list[AsyncSession]) -> None:
    _, postgres = both
    await CatalogWriter(postgres, FakeClock()).write(
        [
            TrackInput(
                source="test",
                source_key="test:one",
                title="Señor Blue",
                artists=("Café Trio", "Blue Øresund"),
                album=None,
                genres=("Jazz",),
            )
        ]
    )
    await postgres.commit()
    sql = "SELECT title, artists, album, genre, tsvector_to_array(lexemes) FROM track_search"
    title, artists, album, genre, lexemes = (await postgres.execute(text(sql))).one()
    assert (title, artists, album, genre) == ("senor blue", "cafe trio blue oresund", "", "jazz")
    words = ["0senor", "0blue", "1cafe", "1trio", "1blue", "1oresund", "3jazz"]
    # And each word's first one to four letters (migration 0015).
    prefixes = [f"{w[0]}>{w[1 : n + 1]}" for w in words for n in range(1, 5)]
    assert sorted(lexemes) == sorted(set(words + prefixes))
    assert {"0>s", "0>se", "0>sen", "0>seno", "1>o", "1>ores", "3>jazz"} <= set(lexemes)


async def test_removed_and_rewritten_tracks_on_postgres(both: list[AsyncSession]) -> None:
    _, postgres = both
    writer = CatalogWriter(postgres, FakeClock())
    [first, second] = await writer.write(
        [
            TrackInput(source="test", source_key="test:a", title="Zebra Night", artists=("A",)),
            TrackInput(source="test", source_key="test:b", title="Zebra", artists=("B",)),
        ]
    )
    await postgres.commit()
    # The one-word title ranks first: rank_key orders by title length, as the rowid does.
    assert await search.search_track_ids(postgres, "zebra") == [second.id, first.id]
    await search.remove_tracks(postgres, [second.id])
    assert await search.search_track_ids(postgres, "zebr") == [first.id]
    await writer.write(
        [TrackInput(source="test", source_key="test:a", title="Quiet Morning", artists=("A",))]
    )
    await postgres.commit()
    assert await search.search_track_ids(postgres, "zebra") == []
    assert await search.search_track_ids(postgres, "quiet morn") == [first.id]


async def test_show_bands_rank_the_same_on_both_databases(both: list[AsyncSession]) -> None:
    rng = random.Random(4)
    for db in both:
        world = World(db)
        rng.seed(4)
        for i in range(90):
            host = f"host{i % 6}"
            show = await world.show(
                host,
                _phrase(rng, 1, 4),
                description=_phrase(rng, 0, 8),
                hashtags=[rng.choice(["love", "night", "blues", "cafe"])],
            )
            if i >= 84:
                await world.live(show)  # one live show per host
            elif i % 3 == 0:
                await world.live(show)
                await world.end(show)
    for query in QUERIES:
        answers = [await search.search_bands(db, SHOWS, query, [0, 1, 2], limit=7) for db in both]
        assert answers[1] == answers[0], query
    live = await search.search_bands(both[0], SHOWS, "host", [0], limit=20)
    assert len(live[0]) == 6


@pytest.mark.parametrize("plan", ["walk", "lookup"])
async def test_either_plan_gives_the_same_answers(
    both: list[AsyncSession], plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever plan the words' counts choose (onair.catalog.pg_plans), the answers are the
    ones SQLite gives: each is forced here by making the other look far dearer."""
    rng = random.Random(4)
    for db in both:
        await CatalogWriter(db, FakeClock()).write(_tracks(400))
        world = World(db)
        rng.seed(4)
        for i in range(60):
            show = await world.show(f"host{i % 5}", _phrase(rng, 1, 4), hashtags=["love"])
            if i >= 55:
                await world.live(show)  # one live show per host
            elif i % 3 == 0:
                await world.live(show)
                await world.end(show)
        await db.commit()
    postgres = both[1]
    for table in ("track_search", "show_search"):
        await postgres.execute(text(f"ANALYZE {table}"))
    await postgres.commit()
    if plan == "walk":
        monkeypatch.setattr(pg_plans, "MATCH_US", 1e9)
    else:
        monkeypatch.setattr(pg_plans, "WALK_US", 1e9)
    statements: list[str] = []
    real_written = pg_plans.RankedMatch._written

    def seen(
        self: pg_plans.RankedMatch, counts: pg_plans.LexemeCounts | None, *, bind: bool
    ) -> tuple[str, tuple[object, ...]]:
        sql, values = real_written(self, counts, bind=bind)
        if counts is not None:
            statements.append(f"{sql} {values!r}")
        return sql, values

    monkeypatch.setattr(pg_plans.RankedMatch, "_written", seen)
    for query in QUERIES:
        tracks = [await search.search_track_ids(db, query, limit=30) for db in both]
        assert tracks[1] == tracks[0], query
        shows = [await search.search_bands(db, SHOWS, query, [0, 1, 2], limit=4) for db in both]
        assert shows[1] == shows[0], query
    # The counts were read from the statistics, and every statement was the plan forced.
    assert statements
    walked = ["ts_match_vq(" in sql for sql in statements]
    assert all(walked) if plan == "walk" else not any(walked)
    if plan == "lookup":
        assert any("'~0'" in sql for sql in statements if "FROM show_search" in sql)
