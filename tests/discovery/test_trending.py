"""Trending hashtags over the last 24 hours, on a clock the test moves across the window; the
hashtag page and its API; the shows list by hashtag."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from onair.catalog.models import Track
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.shows.browse.service import save_listeners
from tests.discovery.browse_world import Made, end, live_show, play

HTML = {"accept": "text/html"}
HOUR = 3600.0


async def trending(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/hashtags/trending")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


async def _track(app: FastAPI) -> int:
    onair = app.state.onair
    async with onair.sessions() as db:
        writer = CatalogWriter(db, onair.clock)
        await writer.write(
            [
                TrackInput(
                    source="test", source_key="t:1", title="Blue", artists=("Bo",), genres=("Jazz",)
                )
            ]
        )
        await db.commit()
        track_id = await db.scalar(select(Track.id))
        assert track_id is not None
        return track_id


async def test_trending_ranks_tags_by_shows_and_listener_minutes_in_24_hours(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sessions = app.state.onair.sessions
    track = await _track(app)
    async with sessions() as db:
        brunch = await live_show(db, clock, "ann", "Brunch", "Jazz", ["jazz", "brunch"])
        rock = await live_show(db, clock, "bob", "Rock On", "Rock", ["rock"])
        # 30 listeners for 10 minutes: 300 listener-minutes; the brunch had one for a minute.
        await play(db, rock.id, track, 600.0, clock.now(), listeners=30)
        await play(db, brunch.id, track, 60.0, clock.now(), listeners=1)
    assert await trending(client) == [
        {"tag": "rock", "shows": 1, "live": 1, "listener_minutes": 300.0, "score": 301.0},
        {"tag": "brunch", "shows": 1, "live": 1, "listener_minutes": 1.0, "score": 2.0},
        {"tag": "jazz", "shows": 1, "live": 1, "listener_minutes": 1.0, "score": 2.0},
    ]

    clock.advance(HOUR)
    async with sessions() as db:
        await end(db, clock, rock)
    later: Made
    clock.advance(22 * HOUR)  # the rock show ended 22 h ago: it still counts
    async with sessions() as db:
        later = await live_show(db, clock, "cat", "Late Jazz", "Jazz", ["jazz"])
    tags = await trending(client)
    assert [(t["tag"], t["shows"], t["live"]) for t in tags] == [
        ("rock", 1, 0),
        ("jazz", 2, 2),
        ("brunch", 1, 1),
    ]

    clock.advance(2 * HOUR + 60)  # now 24 h 1 min after the rock show ended
    tags = await trending(client)
    # The rock show is out of the window; the brunch is live still, but its minute of
    # listening was 25 hours ago.
    assert tags == [
        {"tag": "jazz", "shows": 2, "live": 2, "listener_minutes": 0.0, "score": 2.0},
        {"tag": "brunch", "shows": 1, "live": 1, "listener_minutes": 0.0, "score": 1.0},
    ]

    async with sessions() as db:
        await end(db, clock, brunch)
        await end(db, clock, later)
    clock.advance(24 * HOUR + 1)
    assert await trending(client) == []


async def test_the_hashtag_page_and_api_list_its_shows(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sessions = app.state.onair.sessions
    async with sessions() as db:
        quiet = await live_show(db, clock, "dee", "Quiet Jazz", "Jazz", ["late_night", "jazz"])
        busy = await live_show(db, clock, "eve", "Busy Jazz", "Jazz", ["late_night"])
        await live_show(db, clock, "fay", "Other", "Rock", ["rock"])
        # As the studios write them when listeners come and go.
        await save_listeners(db, busy.id, 12)
        await save_listeners(db, quiet.id, 3)

    r = await client.get("/api/v1/hashtags/%23Late_Night")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["tag"], body["shows"], body["live"]) == ("late_night", 2, 2)
    assert body["trending"]["shows"] == 2

    listed = await client.get(
        "/api/v1/shows", params={"hashtag": "#late_night", "status": "live", "sort": "listeners"}
    )
    assert [(s["title"], s["listeners"]) for s in listed.json()] == [
        ("Busy Jazz", 12),
        ("Quiet Jazz", 3),
    ]

    html = (await client.get("/hashtags/late_night", headers=HTML)).text
    live = re.search(r'<section[^>]*id="live"[^>]*>(.*?)</section>', html, re.S)
    assert live
    assert re.findall(r'data-show-id="(\d+)"', live.group(1)) == [str(busy.id), str(quiet.id)]
    assert "12 listening" in live.group(1)
    assert "<h1>#late_night</h1>" in html
    # Each card's hashtags link to their pages.
    assert 'href="/hashtags/jazz"' in live.group(1)

    home = (await client.get("/", headers=HTML)).text
    shelf = re.search(r'<section[^>]*id="trending"[^>]*>(.*?)</section>', home, re.S)
    assert shelf
    assert re.findall(r'href="/hashtags/(\w+)"', shelf.group(1)) == ["late_night", "jazz", "rock"]


async def test_a_bad_hashtag_is_a_4xx(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/hashtags/no-dashes")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"
    assert (await client.get("/hashtags/no-dashes", headers=HTML)).status_code == 404
    r = await client.get("/api/v1/hashtags/nobody_uses_this")
    assert r.json() == {"tag": "nobody_uses_this", "shows": 0, "live": 0, "trending": None}
    assert (await client.get("/api/v1/hashtags/trending", params={"limit": 0})).status_code == 422


async def test_trending_is_recomputed_once_a_minute(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sessions = app.state.onair.sessions
    async with sessions() as db:
        await live_show(db, clock, "gus", "First", "Jazz", ["first"])
    assert [t["tag"] for t in await trending(client)] == ["first"]
    async with sessions() as db:
        await live_show(db, clock, "hal", "Second", "Jazz", ["second"])
    clock.advance(59)
    assert [t["tag"] for t in await trending(client)] == ["first"]  # the minute's list
    clock.advance(1)
    assert [t["tag"] for t in await trending(client)] == ["first", "second"]
