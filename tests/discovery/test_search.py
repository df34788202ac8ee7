"""The one search box, as a listener uses it: shows, hosts, hashtags, artists and songs found
as typed (prefixes, folded accents and case, one typo per word), live shows first, and "who is
playing this now?" from what listeners heard, never from a queue.

Every test runs on SQLite (FTS5) and, when the server is there, on PostgreSQL (tsqueries).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.search import ARTISTS, clear_index
from onair.licensing.service import Licensing
from onair.settings import Settings
from onair.shows import service as shows
from onair.shows.discovery import index
from onair.shows.discovery.search import Results, discover
from tests.discovery.search_world import World


@pytest.fixture
def world(db: AsyncSession) -> World:
    return World(db)


async def found(world: World, query: str) -> Results:
    return await discover(world.db, query, now=world.clock.now())


def titles(results: Results) -> list[str]:
    return [s.title for s in results.shows]


@pytest.fixture
async def schedule(world: World) -> World:
    """Shows in every state, by hosts with accented names, with hashtags."""
    await world.user("dj_sam", "Sámuel Brooks")
    await world.user("lena_beats", "Léna Østergaard")
    await world.show(
        "dj_sam",
        "Sunday Morning Jazz",
        description="Smooth café sounds for a slow start",
        hashtags=["jazz", "brunch_time"],
    )
    ended = await world.show("lena_beats", "Jazz Night Archive", hashtags=["jazz"])
    await world.live(ended)
    await world.end(ended)
    await world.live(await world.show("lena_beats", "Jazz Hands Live", hashtags=["jazzhands"]))
    await world.show("dj_sam", "Electro Señor", hashtags=["electro"])
    return world


async def test_shows_are_found_as_typed_and_live_ones_come_first(schedule: World) -> None:
    # Live, then upcoming, then past, whatever the words' ranking inside each group.
    assert titles(await found(schedule, "jazz")) == [
        "Jazz Hands Live",
        "Sunday Morning Jazz",
        "Jazz Night Archive",
    ]
    assert titles(await found(schedule, "sund")) == ["Sunday Morning Jazz"]
    assert titles(await found(schedule, "sunday morn")) == ["Sunday Morning Jazz"]
    assert titles(await found(schedule, "SUNDY mornig")) == ["Sunday Morning Jazz"]  # typos
    assert titles(await found(schedule, "senor")) == ["Electro Señor"]  # accent left out
    assert titles(await found(schedule, "SEÑOR")) == ["Electro Señor"]
    assert titles(await found(schedule, "cafe sounds")) == ["Sunday Morning Jazz"]


async def test_shows_are_found_by_hashtag_and_by_host(schedule: World) -> None:
    assert titles(await found(schedule, "#brunch")) == ["Sunday Morning Jazz"]
    assert "Electro Señor" in titles(await found(schedule, "samuel"))
    assert titles(await found(schedule, "ostergaard")) == ["Jazz Hands Live", "Jazz Night Archive"]


async def test_hosts_are_found_by_name_and_username(schedule: World) -> None:
    async def hosts(query: str) -> list[str]:
        return [u.username for u in (await found(schedule, query)).hosts]

    assert await hosts("samu") == ["dj_sam"]  # a prefix of the display name
    assert await hosts("Sámuel") == ["dj_sam"]
    assert await hosts("samuell") == ["dj_sam"]  # one typo
    assert await hosts("dj_s") == ["dj_sam"]  # the username as typed
    assert await hosts("lena") == ["lena_beats"]
    assert await hosts("oster") == ["lena_beats"]  # ø folds to o
    assert await hosts("ostergard") == ["lena_beats"]
    assert await hosts("nobody") == []


async def test_hashtags_are_found_with_their_show_counts(schedule: World) -> None:
    async def tags(query: str) -> list[tuple[str, int]]:
        return [(h.tag, h.shows) for h in (await found(schedule, query)).hashtags]

    assert await tags("jaz") == [("jazz", 2), ("jazzhands", 1)]
    assert await tags("#jazz") == [("jazz", 2), ("jazzhands", 1)]
    assert await tags("brun") == [("brunch_time", 1)]
    assert await tags("elektro") == [("electro", 1)]  # one typo
    assert await tags("brunch time") == [("brunch_time", 1)]


async def test_editing_a_show_reindexes_it(schedule: World) -> None:
    show = (await found(schedule, "electro")).shows[0]
    await shows.edit_show(
        schedule.db,
        schedule.clock,
        show,
        shows.ShowFields(title="Midnight Tango", hashtags=["tango"]),
    )
    await schedule.db.commit()
    assert titles(await found(schedule, "electro")) == []
    assert titles(await found(schedule, "tango")) == ["Midnight Tango"]
    assert [h.tag for h in (await found(schedule, "electro")).hashtags] == []  # no show has it


async def test_rebuilding_gives_the_same_answers(schedule: World) -> None:
    queries = ["jazz", "sund", "samuel", "#brun", "ostergard", "elektro"]

    def answer(r: Results) -> tuple[object, ...]:
        return titles(r), [u.id for u in r.hosts], [(h.tag, h.shows) for h in r.hashtags]

    before = [answer(await found(schedule, q)) for q in queries]
    assert await index.rebuild_discovery(schedule.db) == 4
    await schedule.db.commit()
    assert [answer(await found(schedule, q)) for q in queries] == before


async def test_songs_and_artists_are_found(world: World) -> None:
    await world.tracks(("Canção de Alvito", "Alexandre Bateiras"), ("Hey Jude", "The Beatles"))
    results = await found(world, "cancao alvto")
    assert [t.title for t in results.tracks] == ["Canção de Alvito"]
    results = await found(world, "beatels")
    assert [a.name for a in results.artists] == ["The Beatles"]
    assert [t.title for t in results.tracks] == ["Hey Jude"]
    assert [a.name for a in (await found(world, "alexandre bat")).artists] == ["Alexandre Bateiras"]


async def test_who_is_playing_this_now(world: World) -> None:
    """Two shows live, one playing the song: it is playing now; once it ends, it was played
    recently; an ended show's setlist is found at any age; a show that played it long ago and
    is still live is not "recent"."""
    song, other = await world.tracks(("Harbour Lights", "Blue Pilots"), ("Dust", "Sandmen"))
    playing = await world.live(await world.show("ana", "Morning Drive"))
    await world.live(await world.show("ben", "Afternoon Tea"))
    ben_show = (await found(world, "afternoon")).shows[0]
    await world.play(ben_show, other, ago=30)
    play_id = await world.play(playing, song, ago=10)

    results = await found(world, "harbour lights")
    assert [(p.show.title, p.track.title) for p in results.playing_now] == [
        ("Morning Drive", "Harbour Lights")
    ]
    assert results.recently_played == []
    # The artist finds it too, and a typo in the artist's name.
    assert [p.show.title for p in (await found(world, "blue pilotz")).playing_now] == [
        "Morning Drive"
    ]

    await world.stop(play_id)
    world.clock.advance(60)
    results = await found(world, "harbour")
    assert results.playing_now == []
    assert [(p.show.title, p.play.live) for p in results.recently_played] == [
        ("Morning Drive", True)
    ]

    # Past the window, a live show's play is no longer recent; an ended show's setlist is.
    archive = await world.live(await world.show("cleo", "Old Archive"))
    old = await world.play(archive, song, ago=30)
    await world.stop(old, ago=10)
    await world.end(archive)
    world.clock.advance(7 * 3600)
    results = await found(world, "harbour")
    assert [p.show.title for p in results.recently_played] == ["Old Archive"]
    recent = await discover(world.db, "harbour", now=world.clock.now(), recent=timedelta(hours=8))
    assert [p.show.title for p in recent.recently_played] == ["Morning Drive", "Old Archive"]


async def test_a_song_not_yet_heard_is_not_playing(world: World) -> None:
    """The play log says what is heard: a row that starts later (the program runs a moment
    ahead of the listeners) is not on air yet, and a show that has ended plays nothing."""
    (song,) = await world.tracks(("Slow Boat", "River"))
    show = await world.live(await world.show("ana", "Early Show"))
    await world.play(show, song, ago=-2)  # heard in 2 s
    assert (await found(world, "slow boat")).playing_now == []
    world.clock.advance(3)
    assert [p.show.title for p in (await found(world, "slow boat")).playing_now] == ["Early Show"]
    await world.end(show)  # the studio stopped without closing the row
    results = await found(world, "slow boat")
    assert results.playing_now == []
    assert [p.show.title for p in results.recently_played] == ["Early Show"]


async def test_queued_songs_are_never_revealed(world: World) -> None:
    """Upcoming songs are secret (webcasting rules): a live show with a song queued, not yet
    played, is not found by that song, in any group, and neither is an ended show that had
    it queued and never played it."""
    secret, heard = await world.tracks(("Secret Garden", "Hidden Band"), ("Open Road", "Drivers"))
    host = await world.user("ana")
    show = await world.live(await world.show("ana", "Queue Keeper"))
    licensing = Licensing.of(Settings(), world.clock)
    await shows.add_to_queue(world.db, world.clock, show, host, secret.id, None, licensing)
    await shows.add_to_queue(world.db, world.clock, show, host, heard.id, None, licensing)
    await world.db.commit()
    await world.play(show, heard, ago=5)

    for query in ("secret garden", "hidden band", "secret"):
        results = await found(world, query)
        assert results.playing_now == [] and results.recently_played == [], query
        assert results.shows == [], query
        assert [t.title for t in results.tracks] == ["Secret Garden"]  # the catalog, not the show
    assert [p.show.title for p in (await found(world, "open road")).playing_now] == ["Queue Keeper"]

    await world.end(show)
    results = await found(world, "secret garden")
    assert results.playing_now == [] and results.recently_played == []


@pytest.mark.parametrize("query", ["", "   ", "!!", '"', "*", "%", "_", "AND", "a OR", "\\", "--"])
async def test_queries_without_words_find_nothing_and_never_fail(
    schedule: World, query: str
) -> None:
    results = await found(schedule, query)
    assert isinstance(results, Results)
    if not any(ch.isalnum() for ch in query):
        assert results.empty


async def test_shows_without_hashtags_are_backfilled(schedule: World) -> None:
    """No show carrying a hashtag leaves the hashtag index with nothing to write: the
    backfill (run by `onair db upgrade`) still indexes the shows, and does not fail."""
    db = schedule.db
    await db.execute(text("DELETE FROM show_hashtags"))
    await db.execute(text("DELETE FROM hashtag_search_tags"))
    for search_index in (index.SHOWS, index.HOSTS, index.HASHTAGS, ARTISTS):
        await clear_index(db, search_index)
    await db.commit()
    assert await index.backfill_if_empty(db)
    results = await found(schedule, "jazz")
    assert results.shows and not results.hashtags


async def test_what_was_there_before_the_indexes_is_indexed_once(schedule: World) -> None:
    """A database upgraded to migration 0006 has shows and artists but empty indexes; the
    upgrade's backfill fills them, and does nothing the next time."""
    await schedule.tracks(("Hey Jude", "The Beatles"))
    db = schedule.db
    for search_index in (index.SHOWS, index.HOSTS, index.HASHTAGS, ARTISTS):
        await clear_index(db, search_index)
    await db.commit()
    assert (await found(schedule, "jazz")).empty
    assert await index.backfill_if_empty(db)
    results = await found(schedule, "jazz")
    assert len(results.shows) == 3 and results.hashtags
    assert [a.name for a in (await found(schedule, "beatles")).artists] == ["The Beatles"]
    assert [u.username for u in (await found(schedule, "samuel")).hosts] == ["dj_sam"]
    assert not await index.backfill_if_empty(db)
