"""Importing the freemusi.cc export: the real files (read in place) and small crafted ones."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog import search
from onair.catalog.importers import ImportSummary, Rejected, import_rows
from onair.catalog.importers.freemusicc import (
    count_rows,
    import_freemusicc,
    parse_freemusicc,
    split_artists,
)
from onair.catalog.models import Artist, Track
from onair.catalog.service import TrackInput
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from tests.conftest import require_shared


@dataclass(frozen=True)
class Imported:
    url: str
    tracks_csv: Path
    summary: ImportSummary
    progress: list[tuple[int, int]]


async def _import(url: str, tracks_csv: Path, progress: list[tuple[int, int]]) -> ImportSummary:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await import_freemusicc(
                db, FakeClock(), tracks_csv, on_progress=lambda d, t: progress.append((d, t))
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """The whole export imported once (about 10 s) into a database the tests then read."""
    tracks_csv = require_shared("catalog", "freemusicc", "tracks.csv")
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('freemusicc') / 'catalog.db'}"
    upgrade(url)
    progress: list[tuple[int, int]] = []
    summary = asyncio.run(_import(url, tracks_csv, progress))
    return Imported(url, tracks_csv, summary, progress)


@pytest.fixture
async def db(imported: Imported) -> AsyncIterator[AsyncSession]:
    engine = make_engine(imported.url)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


async def by_key(db: AsyncSession, key: str) -> Track:
    track = await db.scalar(select(Track).where(Track.source_key == f"freemusicc:{key}"))
    assert track is not None, key
    return track


async def test_every_row_is_imported_or_rejected_with_a_reason(
    db: AsyncSession, imported: Imported
) -> None:
    summary = imported.summary
    assert count_rows(imported.tracks_csv) == 21502
    assert summary.imported + len(summary.rejected) == 21502
    assert await db.scalar(select(func.count()).select_from(Track)) == summary.imported
    assert summary.imported > 21400
    reasons = {r.where: r.reason for r in summary.rejected}
    assert reasons["tracks.csv line 3087"] == "missing title"
    assert reasons["tracks.csv line 4264"] == "duplicate of line 4263"
    assert reasons["tracks.csv line 16361"].startswith("missing track artist")
    assert "cannot tell which is right" in reasons["tracks.csv line 8906"]
    assert imported.progress[-1] == (21502, 21502)
    assert [d for d, _ in imported.progress] == sorted(d for d, _ in imported.progress)


async def test_double_encoded_text_is_repaired(db: AsyncSession) -> None:
    assert (await by_key(db, "NN020_0p0_POASMv3:1:2")).title == "Señor Acero"
    assert (await by_key(db, "Canes_da_Lua_Nova-12576:1:2")).title == "Canção de Alvito"
    assert await db.scalar(select(Artist.id).where(Artist.name == "Adriano Orrù")) is not None


async def test_featured_artists_are_split(db: AsyncSession) -> None:
    track = await by_key(db, "jamendo-055062:1:17")
    assert track.artists == ["Egorythm", "Rona Ray"]


async def test_release_details_and_licence(db: AsyncSession) -> None:
    track = await by_key(db, "1011AD:1:1")
    assert (track.title, track.artists, track.track_number) == ("Contradiction", ["Monochord"], 1)
    assert track.album is not None
    assert (track.album.title, track.album.artist_name) == ("Contradictions EP", "Monochord")
    assert (track.year, track.duration_s, track.genres) == (2006, 408.0, ["Electronic"])
    assert (track.source, track.audio_path, track.playable) == ("csv", None, False)
    assert track.licence is not None
    assert track.licence.licence_url == "http://creativecommons.org/licenses/by-nc-sa/2.5/"
    assert (track.licence.label, track.licence.territories) == ("After-Dinner", "*")
    assert track.licence.on_demand_allowed


async def test_question_marks_and_blanks_mean_unknown(db: AsyncSession) -> None:
    track = await by_key(db, "A_Basement_Of_Broken_Dreams:1:1")
    assert track.licence is not None
    assert track.licence.label is None  # "?" in releases.csv
    unlicensed = await by_key(db, "12rec.060:1:1")
    assert unlicensed.licence is not None
    assert unlicensed.licence.licence_url is None
    assert not unlicensed.licence.on_demand_allowed


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("senor acero", "NN020_0p0_POASMv3:1:2"),  # accents left out
        ("cancao alvito", "Canes_da_Lua_Nova-12576:1:2"),
        ("sneor acero", "NN020_0p0_POASMv3:1:2"),  # a typo
        ("disolution val", "dt006:1:2"),
        ("orange hor", "dt006:1:1"),  # still typing
        ("egoryth lonel", "jamendo-055062:1:17"),
        ("rona ray loneliness", "jamendo-055062:1:17"),  # the featured artist
    ],
)
async def test_imported_tracks_are_found(db: AsyncSession, query: str, key: str) -> None:
    expected = (await by_key(db, key)).id
    assert expected in await search.search_track_ids(db, query, limit=5)


async def test_reimporting_changes_nothing(db: AsyncSession, imported: Imported) -> None:
    async def counts() -> dict[str, int]:
        tables = ["tracks", "artists", "albums", "licences", "track_artists", "track_search"]
        return {t: int(await db.scalar(text(f"SELECT count(*) FROM {t}")) or 0) for t in tables}

    before = await counts()
    again = await _import(imported.url, imported.tracks_csv, [])
    assert (again.imported, len(again.rejected)) == (imported.summary.imported, 63)
    assert await counts() == before
    distinct = select(func.count(func.distinct(Track.source_key)))
    assert await db.scalar(distinct) == before["tracks"] == imported.summary.imported


# --- crafted files ----------------------------------------------------------------------------

RELEASES = [
    ["id", "album", "artist", "genre", "label", "licenseurl", "style", "year"],
    ["r1", "Caf\u00c3\u00a9 Nights", "The Band", "Electronic, Rock", "?", "", "Ambient", "2011"],
    [
        "r2",
        "Mix",
        "Various Artists",
        "Pop",
        "Label",
        "http://creativecommons.org/l/by/3.0/",
        "",
        "?",
    ],
]
TRACKS = [
    ["id", "disc", "track", "title", "trackartist", "duration", "trackurl"],
    ["r1", "1", "1", "Se\u00c3\u00b1or", "A feat. B & C", "200", "http://x/1.mp3"],
    ["r1", "1", "2", "", "The Band", "200", "http://x/2.mp3"],
    ["r9", "1", "1", "Lost", "Someone", "200", "http://x/3.mp3"],
    ["r1", "1", "3", "Long", "The Band", "a while", "http://x/4.mp3"],
    ["r1", "1", "x", "Numbered", "The Band", "100", "http://x/5.mp3"],
    ["r1", "1", "1", "Se\u00c3\u00b1or", "A feat. B & C", "200", "http://x/1.mp3"],
    ["r1", "1", "1", "Other", "The Band", "100", "http://x/1b.mp3"],
    ["r2", "1", "1", "Nobody", "", "100", "http://x/6.mp3"],
    ["r1", "1", "4", "Nameless", "", "?", "http://x/7.mp3"],
    ["r1", "1", "1", "Se\u00c3\u00b1or", "A", "200", "http://x/1.mp3"],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    write_csv(tmp_path / "releases.csv", RELEASES)
    return write_csv(tmp_path / "tracks.csv", TRACKS)


def test_each_unusable_row_says_why(crafted: Path) -> None:
    items = list(parse_freemusicc(crafted))
    assert count_rows(crafted) == len(items) == 10
    rejected = {r.where: r.reason for r in items if isinstance(r, Rejected)}
    assert rejected == {
        "tracks.csv line 3": "missing title",
        "tracks.csv line 4": "no release with id 'r9' in releases.csv",
        "tracks.csv line 5": "bad duration 'a while'",
        "tracks.csv line 6": "bad track number 'x'",
        "tracks.csv line 7": "duplicate of line 2",
        "tracks.csv line 9": "missing track artist (and the release is a compilation)",
        "tracks.csv line 11": "same release, disc 1, track 1 and file as line 2, but credited"
        " to 'A' here, 'A & B & C' there: cannot tell which is right",
    }
    good = [i for i in items if isinstance(i, TrackInput)]
    first = good[0]
    assert (first.title, first.artists, first.source_key) == (
        "Señor",
        ("A", "B", "C"),
        "freemusicc:r1:1:1",
    )
    assert (first.album, first.album_artist, first.genres) == (
        "Café Nights",
        "The Band",
        ("Electronic", "Rock"),
    )
    assert (first.year, first.duration_s, first.licence.label, first.licence.licence_url) == (
        2011,
        200.0,
        None,
        None,
    )
    assert not first.licence.on_demand_allowed
    # Another file numbered like track 1 is a different recording: kept, told apart by its file.
    assert good[1].source_key == "freemusicc:r1:1:1:1b.mp3"
    # No track artist on an artist's own release: the release artist; "?" duration: unknown.
    assert (good[2].artists, good[2].duration_s) == (("The Band",), None)


async def test_a_failed_import_writes_nothing(crafted: Path, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'failed.db'}"
    await asyncio.to_thread(upgrade, url)

    def breaks_midway() -> Iterator[TrackInput | Rejected]:
        yield from parse_freemusicc(crafted)
        raise OSError("disk went away")

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            with pytest.raises(OSError, match="disk went away"):
                await import_rows(db, FakeClock(), breaks_midway(), total=10, batch=1)
        async with make_sessionmaker(engine)() as db:
            assert await db.scalar(select(func.count()).select_from(Track)) == 0
            assert await db.scalar(text("SELECT count(*) FROM track_search")) == 0
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("credit", "artists"),
    [
        ("Egorythm feat. Rona Ray", ("Egorythm", "Rona Ray")),
        ("Transextasy feat.Strannik", ("Transextasy", "Strannik")),
        ("Alexander V.Mogilco (feat. JAMA)", ("Alexander V.Mogilco", "JAMA")),
        ("Deru Featuring Isaac Sparks", ("Deru", "Isaac Sparks")),
        ("The Artful Ft. Deep Lyrics", ("The Artful", "Deep Lyrics")),
        (
            "Volfoniq feat. Tribuman, Control Tower and Benjamin Leska",
            ("Volfoniq", "Tribuman", "Control Tower", "Benjamin Leska"),
        ),
        ("Little Feat", ("Little Feat",)),
        ("Soft Cell", ("Soft Cell",)),
        ("Dissociactive vs Sorrowmurk", ("Dissociactive vs Sorrowmurk",)),
    ],
)
def test_featuring_credits(credit: str, artists: tuple[str, ...]) -> None:
    assert split_artists(credit) == artists
