"""Live shows ordered by listeners, with real studios and real listeners.

Three hosts go live on a real server, each playing a tone song from the catalog; MP3 stream
readers connect (three to one show, one to another, none to the third). The shows list and
the home page order the shows by those listeners; when the readers leave the order follows,
and a show that ends keeps its peak but no one listening. Meanwhile the studios credit what
they play to the shows' genre time, which the genre match reads.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from onair.live.station import LISTENERS_EVERY_S
from onair.royalties.models import PlayLog
from onair.shows.browse.models import ShowGenreSeconds
from onair.shows.models import Show
from tests.live import serving_concert_a
from tests.server import RunningServer

pytestmark = pytest.mark.media

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serving_concert_a(tmp_path_factory.mktemp("browse-live")) as running:
        yield running


async def _go_live(url: str, host: str, title: str) -> tuple[httpx.AsyncClient, int]:
    http = httpx.AsyncClient(base_url=url, timeout=30)
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": host, "email": f"{host}@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    show = (await http.post("/api/v1/shows", json={"title": title, "genre": "Test"})).json()
    found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()["tracks"]
    r = await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": found[0]["id"]})
    assert r.status_code == 201, r.text
    r = await http.post(f"/api/v1/shows/{show['id']}/live")
    assert r.status_code == 200, r.text
    return http, int(show["id"])


async def _listen(http: httpx.AsyncClient, show_id: int) -> None:
    """An MP3 listener: reads the stream until cancelled (or the show ends)."""
    async with http.stream("GET", f"/listen/{show_id}.mp3") as r:
        assert r.status_code == 200
        async for _ in r.aiter_raw():
            pass


async def _until(what: str, check: Any, within: float = 25.0) -> Any:
    """Polls `check()` until it returns something true; the listener counts are written
    every few seconds, so the lists follow within that."""
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: still {last!r} after {within} s")


def _by_listeners(anyone: httpx.AsyncClient, want: list[tuple[str, int]]) -> Any:
    async def check() -> Any:
        params = {"status": "live", "sort": "listeners"}
        got = [
            (s["title"], s["listeners"])
            for s in (await anyone.get("/api/v1/shows", params=params)).json()
        ]
        return got if got == want else None

    return check


async def _row(server: RunningServer, show_id: int) -> dict[str, float]:
    async with server.app.state.onair.sessions() as db:
        show = await db.get(Show, show_id)
        assert show is not None
        played = await db.scalar(
            select(func.sum(PlayLog.seconds_played)).where(PlayLog.show_id == show_id)
        )
        genre_s = await db.scalar(
            select(func.sum(ShowGenreSeconds.seconds)).where(ShowGenreSeconds.show_id == show_id)
        )
        return {
            "listeners_now": show.listeners_now,
            "listeners_peak": show.listeners_peak,
            "played_seconds": show.played_seconds,
            "play_log_seconds": float(played or 0.0),
            "genre_seconds": float(genre_s or 0.0),
        }


def _count_listener_writes(server: RunningServer) -> list[str]:
    """Every statement that writes a show's listener count, as the database sees it."""
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE shows SET listeners_now"):
            writes.append(statement)

    event.listen(server.app.state.onair.engine.sync_engine, "before_cursor_execute", seen)
    return writes


async def _scenario(server: RunningServer) -> None:
    writes = _count_listener_writes(server)
    one_http, one = await _go_live(server.url, "one_host", "One Reader")
    three_http, three = await _go_live(server.url, "three_host", "Three Readers")
    none_http, nobody = await _go_live(server.url, "none_host", "Nobody")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as anyone:
        readers = [asyncio.create_task(_listen(anyone, three)) for _ in range(3)]
        lone = asyncio.create_task(_listen(anyone, one))
        want = [("Three Readers", 3), ("One Reader", 1), ("Nobody", 0)]
        await _until("live shows by listeners", _by_listeners(anyone, want))

        home = (await anyone.get("/", headers=HTML)).text
        live = re.search(r'<section[^>]*id="live"[^>]*>(.*?)</section>', home, re.S)
        assert live
        assert re.findall(r'data-show-id="(\d+)"', live.group(1)) == [
            str(three),
            str(one),
            str(nobody),
        ]
        assert "3 listening" in live.group(1)
        assert "1 listening" in live.group(1)

        # Nothing changes now, so nothing is written (the studios sample every second).
        before = list(writes)
        assert len(before) >= 3  # each studio wrote its first count, and the changes since
        await asyncio.sleep(LISTENERS_EVERY_S + 2)
        assert writes == before

        # The studio credits the song's seconds to the show's genre time as it plays.
        async def credited() -> Any:
            match = (await anyone.get(f"/api/v1/shows/{three}")).json()["genre_match"]
            return match if match["played_minutes"] > 0 else None

        match = await _until("genre time credited", credited)
        assert match["share"] == 1.0  # the song is Test, as the show claims
        assert match["verdict"] == "too_early"  # under three minutes

        for reader in readers:
            reader.cancel()
        want = [("One Reader", 1), ("Three Readers", 0), ("Nobody", 0)]  # ties: by peak
        await _until("after the three readers left", _by_listeners(anyone, want))

        r = await one_http.post(f"/api/v1/shows/{one}/end")
        assert r.status_code == 200, r.text
        ended = r.json()
        assert ended["listeners"] is None
        assert ended["listeners_peak"] == 1
        lone.cancel()
        await asyncio.gather(lone, *readers, return_exceptions=True)
        await _until("the ended show gone", _by_listeners(anyone, want[1:]))

    row = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(_row(server, one), server.loop)
    )
    assert row["listeners_now"] == 0
    assert row["listeners_peak"] == 1
    # What was credited is what the play log says was played, all of it in the show's genre.
    assert row["played_seconds"] == pytest.approx(row["play_log_seconds"], abs=0.01)
    assert row["genre_seconds"] == pytest.approx(row["played_seconds"], abs=0.01)
    assert row["played_seconds"] > 5
    for http, show_id in ((three_http, three), (none_http, nobody)):
        assert (await http.post(f"/api/v1/shows/{show_id}/end")).status_code == 200
        await http.aclose()
    await one_http.aclose()


def test_live_shows_are_ordered_by_their_listeners(server: RunningServer) -> None:
    asyncio.run(_scenario(server))
