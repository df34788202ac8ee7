"""Who is playing this now, for real: two shows go live with real studios, one plays a given
song; searching its title lists that show first, as playing now, while listeners hear it, and
under recently played once the host has skipped it. Songs still queued are never told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.live import seed_songs, write_song
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

SONG = "Lighthouse Waltz"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("search-live")
    settings = Settings(data_dir=root / "var")
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    songs = []
    for title, freq in ((SONG, 440.0), ("Night Ferry", 550.0), ("Quiet Harbour", 660.0)):
        path = root / f"{freq:.0f}.flac"
        write_song(path, freq, 40.0, 0.2)
        songs.append((path, title))
    asyncio.run(seed_songs(settings.resolved_database_url, songs))
    with serve(create_app(settings)) as running:
        yield running


async def _host(
    base: str, name: str, title: str, queue: list[str]
) -> tuple[httpx.AsyncClient, int]:
    http = httpx.AsyncClient(base_url=base, timeout=30)
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    show = (await http.post("/api/v1/shows", json={"title": title})).json()
    for song in queue:
        found = (await http.get("/api/v1/catalog/search", params={"q": song})).json()["tracks"]
        r = await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": found[0]["id"]})
        assert r.status_code == 201, r.text
    assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return http, int(show["id"])


async def _until(
    ask: Callable[[], Awaitable[dict[str, Any]]],
    ready: Callable[[dict[str, Any]], bool],
    seconds: float = 15.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        body = await ask()
        if ready(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


def _shows(plays: list[dict[str, Any]]) -> list[int]:
    return [p["show"]["id"] for p in plays]


async def _scenario(base: str) -> None:
    # Show A plays the song, then Night Ferry; show B plays Quiet Harbour with the song queued
    # after it, which must stay secret until it is heard.
    a, show_a = await _host(base, "lamp", "Lamp Room", [SONG, "Night Ferry"])
    b, show_b = await _host(base, "keeper", "Keeper's Log", ["Quiet Harbour", SONG])
    listener = httpx.AsyncClient(base_url=base, timeout=30)
    try:

        async def search() -> dict[str, Any]:
            r = await listener.get("/api/v1/search", params={"q": "lighthouse waltz"})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        playing = await _until(search, lambda body: bool(body["playing_now"]))
        assert _shows(playing["playing_now"]) == [show_a]
        first = playing["playing_now"][0]
        assert first["track"]["title"] == SONG and first["ended_at"] is None
        assert first["show"]["status"] == "live"
        assert playing["recently_played"] == []  # B has it queued: never told
        # Both shows are live, and the one playing it is listed first whatever the query.
        both = (await listener.get("/api/v1/search", params={"q": "lighthouse"})).json()
        assert _shows(both["playing_now"]) == [show_a]
        live = (await listener.get("/api/v1/shows", params={"status": "live"})).json()
        assert {s["id"] for s in live} == {show_a, show_b}

        # The host skips it: Night Ferry plays, the song was played recently in show A.
        assert (await a.post(f"/api/v1/shows/{show_a}/studio/skip")).status_code == 200
        after = await _until(search, lambda body: not body["playing_now"])
        assert after["playing_now"] == []
        assert _shows(after["recently_played"]) == [show_a]
        played = after["recently_played"][0]
        assert played["track"]["title"] == SONG and played["ended_at"] is not None
        assert played["show"]["status"] == "live"

        async def ferry() -> dict[str, Any]:
            body: dict[str, Any] = (
                await listener.get("/api/v1/search", params={"q": "night ferry"})
            ).json()
            return body

        now_ferry = await _until(ferry, lambda body: bool(body["playing_now"]))
        assert _shows(now_ferry["playing_now"]) == [show_a]
    finally:
        for http, show in ((a, show_a), (b, show_b)):
            await http.post(f"/api/v1/shows/{show}/end")
            await http.aclose()
        await listener.aclose()


def test_a_song_is_found_playing_now_then_recently_played(server: RunningServer) -> None:
    asyncio.run(_scenario(server.url))
