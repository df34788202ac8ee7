"""A live show's audience as the host's analytics tell it, over a real server.

The host goes live with a 440 Hz song and a 660 Hz one queued. Four listeners tune in during
the first song, each another way: WebRTC (WHEP), HLS, an MP3 player (VLC) and an Amazon Echo
(its AlexaMediaPlayer User-Agent, on the MP3 stream). A fan chats twice and reacts three
times. The host skips to the second song with the four listening, and a second MP3 player
joins during it. Then everyone leaves and the show ends.

What the analytics must say: one listener per transport while all four listen; the first song
heard by 4 (0 at its start, 4 joined), the second by 5 (4 at its start, 1 joined); 2 chat
messages from 1 person, 3 reactions; peaks per transport; no one left at the end. The speaker
and the late player are checked as audio: they heard the song of their time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.live import seed_songs, write_song
from tests.media import connect, decode, dominant_frequency, new_client
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

ECHO = "AlexaMediaPlayer/2.1.4676.0 (Linux;Android 5.1.1) ExoPlayerLib/1.5.9"
VLC = "VLC/3.0.18 LibVLC/3.0.18"
HLS_JS = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from onair.app import create_app

    root = tmp_path_factory.mktemp("analytics")
    settings = Settings(data_dir=root / "var", analytics_sample_s=1.0)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    a440, a660 = root / "a440.flac", root / "a660.flac"
    write_song(a440, 440.0, 60.0, 0.3)
    write_song(a660, 660.0, 60.0, 0.3)
    asyncio.run(seed_songs(settings.resolved_database_url, [(a440, "Concert A"), (a660, "High E")]))
    with serve(create_app(settings)) as running:
        yield running


async def _person(server: RunningServer, name: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=server.url, timeout=30)
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    return http


async def _mp3(url: str, agent: str, stop: asyncio.Event, into: bytearray) -> None:
    async with (
        httpx.AsyncClient(headers={"user-agent": agent}, timeout=30) as http,
        http.stream("GET", url) as r,
    ):
        assert r.status_code == 200
        async for chunk in r.aiter_raw():
            into += chunk
            if stop.is_set():
                return


async def _hls(url: str, stop: asyncio.Event) -> int:
    fetched = 0
    async with httpx.AsyncClient(headers={"user-agent": HLS_JS}, timeout=30) as http:
        while not stop.is_set():
            r = await http.get(url)
            assert r.status_code == 200, r.text
            fetched += 1
            await asyncio.sleep(0.5)
    return fetched


async def _until(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.25)


async def _run(server: RunningServer) -> dict[str, Any]:
    host = await _person(server, "deejay")
    fan = await _person(server, "fan")
    show = (await host.post("/api/v1/shows", json={"title": "Counted", "genre": "Test"})).json()
    sid = show["id"]
    for q in ("concert", "high e"):
        found = (await host.get("/api/v1/catalog/search", params={"q": q})).json()["tracks"]
        r = await host.post(f"/api/v1/shows/{sid}/queue", json={"track_id": found[0]["id"]})
        assert r.status_code == 201, r.text
    assert (await host.post(f"/api/v1/shows/{sid}/live")).status_code == 200
    analytics = f"/api/v1/shows/{sid}/analytics"

    stop, late_stop = asyncio.Event(), asyncio.Event()
    echo, vlc, late = bytearray(), bytearray(), bytearray()
    webrtc = await connect(fan, new_client(), f"/api/v1/shows/{sid}/whep")
    readers = [
        asyncio.create_task(_mp3(f"{server.url}/listen/{sid}.mp3", ECHO, stop, echo)),
        asyncio.create_task(_mp3(f"{server.url}/listen/{sid}.mp3", VLC, stop, vlc)),
        asyncio.create_task(_hls(f"{server.url}/listen/{sid}.m3u8", stop)),
    ]

    async def everyone() -> dict[str, Any] | None:
        body = (await host.get(analytics)).json()
        last = body["samples"][-1]["by_transport"] if body["samples"] else {}
        ones = {"webrtc": 1, "hls": 1, "stream": 1, "smart_speaker": 1}
        return body if last == ones else None

    during = await _until(everyone)
    for text in ("hello", "great set"):
        assert (await fan.post(f"/api/v1/shows/{sid}/chat", json={"text": text})).status_code == 201
    for emoji in ("🔥", "👏", "🔥"):
        r = await fan.post(f"/api/v1/shows/{sid}/reactions", json={"emoji": emoji})
        assert r.status_code in (200, 202, 204), r.text
    await asyncio.sleep(1.5)  # the reactions land in a sample
    echo_first = len(echo)
    assert (await host.post(f"/api/v1/shows/{sid}/studio/skip")).status_code == 200
    await asyncio.sleep(5.0)  # past the crossfade: the first song is over
    latecomer = asyncio.create_task(
        _mp3(f"{server.url}/listen/{sid}.mp3", VLC + " (2)", late_stop, late)
    )
    await asyncio.sleep(4.0)
    late_stop.set()
    stop.set()
    await latecomer
    hls_fetches = [await t for t in readers][-1]
    await webrtc.pc.close()

    async def nobody() -> dict[str, Any] | None:
        body = (await host.get(analytics)).json()
        return body if body["samples"][-1]["listeners"] == 0 else None

    # The HLS client counts until it has been quiet for 10 s.
    after = await _until(nobody, within=30)
    assert (await host.post(f"/api/v1/shows/{sid}/end")).status_code == 200
    final = (await host.get(analytics)).json()
    page = await host.get(f"/shows/{sid}/analytics")
    for http in (host, fan):
        await http.aclose()
    return {
        "during": during,
        "after": after,
        "final": final,
        "page": page,
        "echo": bytes(echo),
        "echo_first": echo_first,
        "late": bytes(late),
        "hls_fetches": hls_fetches,
        "webrtc_heard": webrtc.audio(),
    }


@pytest.fixture(scope="module")
def run(server: RunningServer) -> dict[str, Any]:
    return asyncio.run(_run(server))


def test_each_transport_is_counted_while_they_listen(run: dict[str, Any]) -> None:
    during = run["during"]
    assert during is not None, "the four listeners never showed one per transport"
    assert during["peak_listeners"] >= 4
    assert run["hls_fetches"] > 5
    assert len(run["webrtc_heard"]) > 0


def test_the_analytics_tell_who_came_how(run: dict[str, Any]) -> None:
    final = run["final"]
    peaks = {t["kind"]: t["peak"] for t in final["transports"]}
    assert peaks == {"webrtc": 1, "hls": 1, "stream": 2, "smart_speaker": 1}
    assert final["peak_listeners"] == 5
    assert final["samples"][-1]["listeners"] == 0
    assert 0 < final["average_listeners"] <= 5
    hours = {t["kind"]: t["listener_hours"] for t in final["transports"]}
    assert all(h > 0 for h in hours.values()), hours
    assert final["listener_hours"] == pytest.approx(sum(hours.values()), abs=0.002)
    assert (final["chat_messages"], final["chatters"], final["reactions"]) == (2, 1, 3)


def test_every_song_counts_its_listeners_once(run: dict[str, Any]) -> None:
    songs = {s["title"]: s for s in run["final"]["setlist"]}
    # Nobody at the first song's start, four joined during it; four at the second's, one joined.
    assert songs["Concert A"]["performances"] == 4
    assert songs["Concert A"]["skipped"] is True
    assert songs["High E"]["performances"] == 5
    assert songs["High E"]["peak_listeners"] == 5
    assert 0 < songs["High E"]["average_listeners"] <= 5


def test_the_listeners_heard_the_songs_of_their_time(run: dict[str, Any]) -> None:
    echo = decode(run["echo"][: run["echo_first"]], "mp3")
    assert len(echo) > 48_000
    assert abs(dominant_frequency(echo[-48_000:]) - 440.0) < 5
    late = decode(run["late"], "mp3")
    assert len(late) > 48_000
    assert abs(dominant_frequency(late[-48_000:]) - 660.0) < 5


def test_the_page_plots_the_show(run: dict[str, Any]) -> None:
    page = run["page"]
    assert page.status_code == 200
    assert "<svg" in page.text and "Smart speaker" in page.text
    points = page.text.split('class="plot-line" points="', 1)[1].split('"', 1)[0].split()
    assert len(points) == 2 * len(run["final"]["samples"])
