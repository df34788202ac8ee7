"""Catalog search as a host uses it: folded, as-you-type, forgiving one typo per word.

Every test runs on SQLite (FTS5) and, when the server is there, on PostgreSQL (tsqueries).
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog import search
from onair.catalog.models import Track
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock


def track(
    key: str, title: str, *artists: str, album: str | None = None, genre: str = "Pop"
) -> TrackInput:
    return TrackInput(
        source="test",
        source_key=f"test:{key}",
        title=title,
        artists=artists or ("Someone",),
        album=album,
        genres=(genre,),
    )


async def write(db: AsyncSession, *items: TrackInput) -> dict[str, int]:
    tracks = await CatalogWriter(db, FakeClock()).write(items)
    await db.commit()
    return {t.source_key.removeprefix("test:"): t.id for t in tracks}


async def titles(db: AsyncSession, query: str, **kwargs: int) -> list[str]:
    ids = await search.search_track_ids(db, query, **kwargs)
    rows = await db.execute(select(Track.id, Track.title).where(Track.id.in_(ids)))
    by_id: dict[int, str] = {track_id: title for track_id, title in rows}
    return [by_id[i] for i in ids]


@pytest.fixture
async def catalog(db: AsyncSession) -> dict[str, int]:
    return await write(
        db,
        track(
            "fairy",
            "Dance of the Sugar Plum Fairy",
            "Pyotr Ilyich Tchaikovsky",
            album="The Nutcracker",
            genre="Classical",
        ),
        track("joga", "Jóga", "Björk", album="Homogenic", genre="Electronic"),
        track("cafe", "cafe del mar", "Energy 52", genre="Trance"),
        track("senor", "Señor Acero", "Aguas Tónicas", genre="World"),
        track("zero", "Etiket Zerø", "MC B.Wayne", genre="Hip Hop"),
    )


async def test_accents_and_case_are_folded(db: AsyncSession, catalog: dict[str, int]) -> None:
    assert await titles(db, "bjork") == ["Jóga"]
    assert await titles(db, "BJÖRK") == ["Jóga"]
    assert await titles(db, "joga homogenic") == ["Jóga"]
    assert await titles(db, "Café") == ["cafe del mar"]
    assert await titles(db, "senor tonicas") == ["Señor Acero"]
    # ø has no decomposition, so plain Unicode folding would miss it.
    assert await titles(db, "zero") == ["Etiket Zerø"]


async def test_every_word_is_a_prefix_as_you_type(
    db: AsyncSession, catalog: dict[str, int]
) -> None:
    assert await titles(db, "sug") == ["Dance of the Sugar Plum Fairy"]
    assert await titles(db, "dan sug") == ["Dance of the Sugar Plum Fairy"]
    assert await titles(db, "sugar p") == ["Dance of the Sugar Plum Fairy"]
    assert await titles(db, "tchaik nutc") == ["Dance of the Sugar Plum Fairy"]
    assert await titles(db, "sugar x") == []


FAIRY = "Dance of the Sugar Plum Fairy"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sugr plum", FAIRY),  # a letter left out
        ("suagr plum", FAIRY),  # two letters swapped
        ("sugaar plum", FAIRY),  # a letter doubled
        ("sugar plym", FAIRY),  # a wrong letter
        ("sugr plym fiary", FAIRY),  # one typo in each of three words
        ("tchaikovksy", FAIRY),
        ("bjrok", "Jóga"),
        ("homogenik", "Jóga"),
    ],
)
async def test_one_typo_per_word_is_forgiven(
    db: AsyncSession, catalog: dict[str, int], query: str, expected: str
) -> None:
    assert await titles(db, query) == [expected]


@pytest.mark.parametrize("query", ["sgura plum", "sugar plmuu", "bjxrq", "fiaryy"])
async def test_two_typos_in_a_word_are_not(
    db: AsyncSession, catalog: dict[str, int], query: str
) -> None:
    assert await titles(db, query) == []


async def test_exact_matches_rank_above_typo_matches(db: AsyncSession) -> None:
    await write(db, track("bjorn", "Bjorn Again"), track("bjork", "Bjork Live"))
    assert await titles(db, "bjork") == ["Bjork Live", "Bjorn Again"]
    assert await titles(db, "bjorn") == ["Bjorn Again", "Bjork Live"]


async def test_title_matches_rank_above_artist_album_and_genre(db: AsyncSession) -> None:
    # Written first, so the id tie-break cannot be what puts the title match first.
    await write(
        db,
        track("genre", "Blue Evening", genre="Jazz"),
        track("album", "Green Morning", album="Jazz Classics"),
        track("artist", "Red Night", "Jazz Jennings"),
        track("title", "Jazz Standards"),
    )
    assert await titles(db, "jazz") == [
        "Jazz Standards",
        "Red Night",
        "Green Morning",
        "Blue Evening",
    ]


async def test_whole_words_rank_above_longer_words_they_begin(db: AsyncSession) -> None:
    await write(db, track("lovely", "Lovely Day"), track("love", "Love Song"))
    assert await titles(db, "love") == ["Love Song", "Lovely Day"]


async def test_broad_queries_rank_as_narrow_ones(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query matching many tracks is answered placement by placement; same ranking."""
    rng = random.Random(7)
    vocabulary = ["love", "lovely", "lover", "night", "nights", "blue", "dance", "sugar", "the"]

    def words(n: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(n))

    await write(
        db,
        *(
            track(
                f"t{i}",
                words(rng.randint(1, 4)),
                words(rng.randint(1, 2)),
                album=words(rng.randint(1, 3)),
                genre=rng.choice(["Blue", "Dance", "Love Songs", "Pop"]),
            )
            for i in range(80)
        ),
    )
    queries = ["love", "lov", "the", "love night", "night lo", "blue the love", "dance", "sugr"]
    narrow = [await search.search_track_ids(db, q, limit=7, offset=2) for q in queries]
    monkeypatch.setattr(search, "SCORE_ALL_BELOW", 1)
    broad = [await search.search_track_ids(db, q, limit=7, offset=2) for q in queries]
    assert broad == narrow
    assert all(narrow[:-1])


async def test_limit_and_offset_page_through_the_ranking(db: AsyncSession) -> None:
    await write(db, *(track(f"n{i}", f"Night Drive {i}") for i in range(7)))
    everything = await search.search_track_ids(db, "night", limit=50)
    assert len(everything) == 7
    pages = [await search.search_track_ids(db, "night", limit=3, offset=o) for o in (0, 3, 6)]
    assert [i for page in pages for i in page] == everything


async def test_rewriting_a_track_replaces_its_entry(
    db: AsyncSession, catalog: dict[str, int]
) -> None:
    ids = await write(db, track("fairy", "Waltz of the Flowers", "Tchaikovsky", genre="Classical"))
    assert ids["fairy"] == catalog["fairy"]
    assert await titles(db, "sugar plum") == []
    assert await search.search_track_ids(db, "waltz flowers") == [catalog["fairy"]]


async def test_removed_tracks_are_not_found(db: AsyncSession, catalog: dict[str, int]) -> None:
    await search.remove_tracks(db, [catalog["joga"]])
    await db.commit()
    assert await titles(db, "bjork") == []
    # Deleting the track itself takes it out of the index too (trigger or foreign key).
    await db.execute(delete(Track).where(Track.id == catalog["cafe"]))
    await db.commit()
    assert await titles(db, "cafe") == []
    assert await titles(db, "sugar") == ["Dance of the Sugar Plum Fairy"]


async def test_rebuild_gives_the_same_answers(db: AsyncSession, catalog: dict[str, int]) -> None:
    queries = ["bjork", "sug", "suagr plum", "cafe", "zero", "senor"]
    before = [await search.search_track_ids(db, q) for q in queries]
    progress: list[tuple[int, int]] = []
    assert (
        await search.rebuild_index(db, batch=2, on_progress=lambda d, t: progress.append((d, t)))
        == 5
    )
    await db.commit()
    assert [await search.search_track_ids(db, q) for q in queries] == before
    assert progress[-1] == (5, 5)
    count = await db.scalar(select(func.count()).select_from(text("track_search")))
    assert count == 5


async def test_queries_without_words_find_nothing(
    db: AsyncSession, catalog: dict[str, int]
) -> None:
    for query in ["", "   ", "!!", '"', "*", "AND", "sugar OR"]:
        assert isinstance(await search.search_track_ids(db, query), list)
    assert await search.search_track_ids(db, "") == []
    assert await search.search_track_ids(db, "-- ()") == []


def test_one_edit_is_damerau_levenshtein() -> None:
    assert search.within_one_edit("sugar", "sugar")
    assert search.within_one_edit("sugr", "sugar")
    assert search.within_one_edit("sugaar", "sugar")
    assert search.within_one_edit("suagr", "sugar")
    assert search.within_one_edit("sugor", "sugar")
    assert not search.within_one_edit("sgura", "sugar")
    assert not search.within_one_edit("abc", "bca")  # share a deletion, yet two edits apart
    assert not search.within_one_edit("sug", "sugar")


def test_tokens_match_what_the_index_stores() -> None:
    assert search.tokens("Björk - Jóga (Live)") == ["bjork", "joga", "live"]
    assert search.tokens("Rock'n'Roll_Tour Zerø ß") == ["rock", "n", "roll", "tour", "zero", "ss"]
