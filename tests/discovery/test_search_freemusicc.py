"""The search box over the real freemusi.cc catalog (read in place): known songs and artists
found with a typo, with the accents left out and by a prefix as typed, ranked first; shows
named like songs found beside them, and the live one playing a song listed as playing it now.

SQLite holds the whole export; PostgreSQL (when it is there) the key cases among a sample.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.importers import import_rows
from onair.catalog.importers.freemusicc import import_freemusicc, parse_freemusicc
from onair.catalog.models import Track
from onair.catalog.service import TrackInput
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.shows.discovery.search import Results, discover
from tests.conftest import require_shared
from tests.discovery.search_world import World

VARIACOES = "Variações Sobre um tema Melancólico"
DUENO = "El Dueño de las Mentiras"
CANCAO = "Canção de Alvito"

# (what is typed, the song that must come first)
SONGS = [
    ("variacoes melancolico", VARIACOES),  # accents left out
    ("VARIAÇÕES MELANCÓLICO", VARIACOES),  # case
    ("variaçoes melancolco", VARIACOES),  # a letter left out
    ("variac sobre", VARIACOES),  # still typing
    ("el dueno de las mentiras", DUENO),
    ("dueño mentiars", DUENO),  # two letters swapped
    ("due menti", DUENO),
    ("cancao de alvito", CANCAO),
    ("cancao alvtio", CANCAO),
    ("contradiction", "Contradiction"),  # the whole title before "Reasonable Contradictions"
    ("contradictoin", "Contradiction"),
]
# (what is typed, the artists that must come first, in any order)
ARTISTS = [
    ("agustin strizzi", {"Agustín Strizzi Grupo", "Agustin Strizzi Group"}),
    ("agustn strizzi", {"Agustín Strizzi Grupo", "Agustin Strizzi Group"}),
    ("bjorn gorden", {"Björn & Gorden", "Björn and Gorden"}),
    ("björn gord", {"Björn & Gorden", "Björn and Gorden"}),
    ("adriano orru", {"Adriano Orrù"}),
    ("adrano orru", {"Adriano Orrù"}),  # a letter left out
]


def _tracks_csv() -> Path:
    return require_shared("catalog", "freemusicc", "tracks.csv")


@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The whole export imported once (about 10 s)."""
    tracks_csv = _tracks_csv()
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('discovery') / 'catalog.db'}"
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as db:
            await import_freemusicc(db, FakeClock(), tracks_csv)
        await engine.dispose()

    asyncio.run(load())
    return url


@pytest.fixture
async def db(catalog_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(catalog_url)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


async def results(db: AsyncSession, query: str) -> Results:
    return await discover(db, query, now=FakeClock().now())


@pytest.mark.parametrize(("query", "title"), SONGS)
async def test_known_songs_come_first(db: AsyncSession, query: str, title: str) -> None:
    found = await results(db, query)
    assert found.tracks, query
    assert found.tracks[0].title == title, [t.title for t in found.tracks[:5]]


@pytest.mark.parametrize(("query", "names"), ARTISTS)
async def test_known_artists_come_first(db: AsyncSession, query: str, names: set[str]) -> None:
    found = await results(db, query)
    assert {a.name for a in found.artists[: len(names)]} == names, [a.name for a in found.artists]


async def test_shows_are_found_beside_songs_and_the_live_one_playing_it_first(
    db: AsyncSession,
) -> None:
    """Two live shows; one plays Canção de Alvito. Searching the song lists that show as
    playing it now; shows named like it are in the shows group."""
    world = World(db)
    song = await db.scalar(select(Track).where(Track.title == CANCAO))
    assert song is not None
    await world.show("fado_fan", "Canção Sessions", hashtags=["fado"])
    playing = await world.live(await world.show("radio_luz", "Alvito Live", hashtags=["fado"]))
    other = await world.live(await world.show("dj_mar", "Morning Mar"))
    other_song = await db.scalar(select(Track).where(Track.title == "Contradiction"))
    assert other_song is not None
    await world.play(other, other_song, ago=20)
    await world.play(playing, song, ago=5)

    found = await results(db, "cancao alvito")
    assert [p.show.title for p in found.playing_now] == ["Alvito Live"]
    assert found.tracks[0].title == CANCAO
    assert [s.title for s in (await results(db, "cancao")).shows] == ["Canção Sessions"]
    assert [s.title for s in (await results(db, "alvit")).shows] == ["Alvito Live"]
    assert [h.tag for h in (await results(db, "fad")).hashtags] == ["fado"]
    # By the artist: Alexandre Bateiras is on air in one show.
    by_artist = await results(db, "alexandre bateiras")
    assert [p.show.title for p in by_artist.playing_now] == ["Alvito Live"]


# --- PostgreSQL ---------------------------------------------------------------------------------


def _sample(tracks_csv: Path) -> Iterator[TrackInput]:
    """The songs and artists of the key cases, and one row in ten of the rest as company."""
    wanted = {title for _, title in SONGS} | {"Reasonable Contradictions"}
    artists = set().union(*(names for _, names in ARTISTS))
    for i, item in enumerate(parse_freemusicc(tracks_csv)):
        if not isinstance(item, TrackInput):
            continue
        if item.title in wanted or artists & set(item.artists) or i % 10 == 0:
            yield item


@pytest.mark.postgres
async def test_key_cases_on_postgresql(postgres_url: str) -> None:
    tracks_csv = _tracks_csv()
    await asyncio.to_thread(upgrade, postgres_url)
    engine = make_engine(postgres_url)
    try:
        async with make_sessionmaker(engine)() as db:
            summary = await import_rows(db, FakeClock(), _sample(tracks_csv))
            assert summary.imported > 2000
            for query, title in SONGS:
                found = await results(db, query)
                assert found.tracks and found.tracks[0].title == title, query
            for query, names in ARTISTS:
                found = await results(db, query)
                assert {a.name for a in found.artists[: len(names)]} == names, query
    finally:
        await engine.dispose()
