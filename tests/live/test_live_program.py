"""The live program end to end, checked as audio.

A host goes live with a 440 Hz "song" queued and talks (a 1 kHz "voice" in bursts) over WebRTC.
A WHEP listener, an MP3 reader and an HLS reader each decode what they receive: 440 Hz all
through, 1 kHz exactly during the bursts, the music ducked by at least 9 dB under them; the
host's return carries the music and not their own voice. Then the host skips to a 660 Hz song
and the ICY title changes where the new song is heard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import m3u8
import numpy as np
import pytest

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.royalties import service as play_log
from onair.settings import Settings
from tests.live import RATE, Mono, ToneTrack, band_db, levels, runs, seed_songs, write_song
from tests.media import connect, decode, new_client
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

# The voice: silent, then two bursts of 1 kHz; seconds from when the host's line opens.
BURSTS = [(3.0, 5.0), (7.5, 9.5)]
TALK_FOR = 11.0


def talking(t: float) -> float:
    return 0.3 if any(a <= t < b for a, b in BURSTS) else 0.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("live")
    settings = Settings(data_dir=root / "var")
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    a440, a660 = root / "a440.flac", root / "a660.flac"
    write_song(a440, 440.0, 40.0, 0.3)
    write_song(a660, 660.0, 30.0, 0.1)  # quieter: the loudness gain must level it
    asyncio.run(seed_songs(settings.resolved_database_url, [(a440, "Concert A"), (a660, "High E")]))
    with serve(create_app(settings)) as running:
        yield running


def check_talk_over(signal: Mono, where: str) -> None:
    """The program as heard: bursts of voice where the host talked, music ducked under them."""
    voice = levels(signal, 1000.0)
    music = levels(signal, 440.0)
    bursts = runs(voice > -30.0)
    assert len(bursts) == len(BURSTS), f"{where}: voice heard at {bursts}, expected {BURSTS}"
    for (start, end), (want_start, want_end) in zip(bursts, BURSTS, strict=True):
        assert abs((end - start) - (want_end - want_start)) < 0.3, f"{where}: burst {start}-{end}"
    hop = 0.05
    # Judge the stretch around the talk: before it a reader may still be starting, after it
    # the test goes on to skip songs.
    span = np.zeros(len(music), dtype=bool)
    span[max(0, int((bursts[0][0] - 2.0) / hop)) : int((bursts[-1][1] + 1.5) / hop)] = True
    under = np.zeros(len(music), dtype=bool)
    clear = span.copy()
    for start, end in bursts:
        a, b = int((start + 0.4) / hop), int((end - 0.1) / hop)
        under[a:b] = True
        clear[max(0, int((start - 0.3) / hop)) : int((end + 1.5) / hop)] = False
    assert (music[span] > -40).all(), f"{where}: the music dropped out ({music.min():.1f} dB)"
    ducked = np.median(music[clear]) - np.median(music[under])
    assert ducked >= 9.0, f"{where}: music only {ducked:.1f} dB quieter under the voice"
    assert ducked <= 16.0, f"{where}: music ducked {ducked:.1f} dB, far more than 12"


@dataclass
class IcyReader:
    audio: bytearray = field(default_factory=bytearray)
    titles: list[tuple[int, str]] = field(default_factory=list)  # (audio byte offset, title)


async def read_icy(http: httpx.AsyncClient, url: str, seconds: float, into: IcyReader) -> None:
    """An ICY client of our own: splits the stream into audio and StreamTitle blocks."""
    async with http.stream("GET", url, headers={"Icy-MetaData": "1"}, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/mpeg"
        metaint = int(r.headers["icy-metaint"])
        buffer = bytearray()
        deadline = time.monotonic() + seconds
        async for chunk in r.aiter_raw():
            buffer += chunk
            while True:
                if len(buffer) < metaint + 1:
                    break
                length = buffer[metaint] * 16
                if len(buffer) < metaint + 1 + length:
                    break
                into.audio += buffer[:metaint]
                block = bytes(buffer[metaint + 1 : metaint + 1 + length]).rstrip(b"\0")
                if block:
                    title = block.decode().split("StreamTitle='", 1)[1].split("';", 1)[0]
                    into.titles.append((len(into.audio), title))
                del buffer[: metaint + 1 + length]
            if time.monotonic() > deadline:
                return


async def read_hls(http: httpx.AsyncClient, url: str, seconds: float) -> tuple[bytes, str]:
    """Polls the live playlist like a player and fetches each new segment once."""
    seen: set[str] = set()
    data = bytearray()
    text = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = await http.get(url)
        assert r.status_code == 200, r.text
        text = r.text
        playlist = m3u8.loads(text, uri=url)
        for segment in playlist.segments:
            if segment.uri in seen:
                continue
            seen.add(segment.uri)
            got = await http.get(segment.absolute_uri)
            assert got.status_code == 200
            data += got.content
        await asyncio.sleep(0.5)
    return bytes(data), text


async def _signed_in_host(http: httpx.AsyncClient) -> int:
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": "tonehost", "email": "tone@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    show = (await http.post("/api/v1/shows", json={"title": "Tone Show", "genre": "Test"})).json()
    found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()["tracks"]
    r = await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": found[0]["id"]})
    assert r.status_code == 201, r.text
    high = (await http.get("/api/v1/catalog/search", params={"q": "high e"})).json()["tracks"]
    await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": high[0]["id"]})
    assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return int(show["id"])


@pytest.fixture(scope="module")
def live_run(server: RunningServer) -> Iterator[dict[str, object]]:
    yield asyncio.run(_live_run(server))


async def _live_run(server: RunningServer) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        show_id = await _signed_in_host(http)
        live_at = time.monotonic()  # the go-live has just been answered
        # Listeners tune in once the first song's play is logged: it started before them.
        deadline = live_at + 10
        while not await asyncio.to_thread(server.call, _plays(server, show_id)):
            assert time.monotonic() < deadline, "the first song never started"
            await asyncio.sleep(0.05)
        listener = await connect(http, new_client(), f"/api/v1/shows/{show_id}/whep")
        icy = IcyReader()
        async with httpx.AsyncClient(base_url=server.url) as listener_http:
            mp3 = asyncio.create_task(
                read_icy(listener_http, f"/listen/{show_id}.mp3", TALK_FOR + 2, icy)
            )
            hls = asyncio.create_task(
                read_hls(listener_http, f"{server.url}/listen/{show_id}.m3u8", TALK_FOR + 8)
            )
            await asyncio.sleep(1.0)  # let every reader start before the host talks
            show_json = (await http.get(f"/api/v1/shows/{show_id}")).json()
            path = f"/api/v1/shows/{show_id}/studio/webrtc"
            host = await connect(http, new_client(send=ToneTrack(1000.0, talking)), path)
            await asyncio.sleep(TALK_FOR + 2)
            await mp3
            hls_data, playlist = await hls
            # Then the host skips to the next song while a fresh ICY reader listens.
            after = IcyReader()
            reader = asyncio.create_task(
                read_icy(listener_http, f"/listen/{show_id}.mp3", 8.0, after)
            )
            await asyncio.sleep(2.0)
            skipped = await http.post(f"/api/v1/shows/{show_id}/studio/skip")
            assert skipped.status_code == 200, skipped.text
            first_song_s = time.monotonic() - live_at
            await reader
        for peer in (listener, host):
            await peer.pc.close()
        await http.post(f"/api/v1/shows/{show_id}/end")
    plays = server.call(_plays(server, show_id))
    return {
        "show": show_json,
        "plays": plays,
        "first_song_s": first_song_s,
        "whep": listener.audio(),
        "host": host.audio(),
        "mp3": decode(bytes(icy.audio), "mp3"),
        "hls": decode(hls_data, "mpegts"),
        "playlist": playlist,
        "icy_titles": icy.titles,
        "after_skip": after,
    }


async def _plays(server: RunningServer, show_id: int) -> list[dict[str, object]]:
    async with server.app.state.onair.sessions() as db:
        rows = await play_log.plays_of_show(db, show_id)
    return [
        {
            "track_id": r.track_id,
            "seconds": r.seconds_played,
            "listeners": r.listeners_at_start,
            "listener_seconds": r.listener_seconds,
            "skipped": r.skipped,
            "ended": r.ended_at is not None,
        }
        for r in rows
    ]


@pytest.mark.parametrize("output", ["whep", "mp3", "hls"])
def test_listeners_hear_the_voice_over_ducked_music(
    live_run: dict[str, object], output: str
) -> None:
    signal = live_run[output]
    assert isinstance(signal, np.ndarray)
    assert len(signal) > (TALK_FOR - 1) * RATE, f"{output}: only {len(signal) / RATE:.1f} s"
    assert band_db(signal, 440.0) > -30, f"{output}: no 440 Hz song"
    check_talk_over(signal, output)


def test_the_host_hears_the_music_but_not_themselves(live_run: dict[str, object]) -> None:
    back = live_run["host"]
    assert isinstance(back, np.ndarray)
    assert len(back) > 5 * RATE
    music, voice = levels(back, 440.0), levels(back, 1000.0)
    assert np.median(music) > -25, "the host's return has no music"
    assert voice.max() < np.median(music) - 30, "the host hears their own voice"


def test_hls_playlist_is_live_with_program_date_time(live_run: dict[str, object]) -> None:
    playlist = m3u8.loads(str(live_run["playlist"]))
    assert playlist.target_duration and playlist.target_duration <= 3
    assert playlist.segments and all(s.program_date_time for s in playlist.segments)
    assert all(1.5 <= s.duration <= 2.5 for s in playlist.segments)


def test_icy_title_follows_the_song_as_heard(live_run: dict[str, object]) -> None:
    first = live_run["icy_titles"]
    assert isinstance(first, list) and first and first[0][1] == "Test Tones - Concert A"
    after = live_run["after_skip"]
    assert isinstance(after, IcyReader)
    titles = [t for _, t in after.titles]
    assert titles[0] == "Test Tones - Concert A" and titles[-1] == "Test Tones - High E"
    change = next(offset for offset, t in after.titles if t.endswith("High E"))
    audio = decode(bytes(after.audio), "mp3")
    # Where the new song is heard in the decoded audio, against where the title changed.
    high = levels(audio, 660.0)
    heard_at = runs(high > -30)[0][0]
    title_at = change / len(after.audio) * len(audio) / RATE
    # ICY carries a title every metaint bytes (16000: 1 s at 128 kb/s), so the title changes at
    # the first metadata block after the song is heard: never before it, at most 1 s after.
    late = title_at - heard_at
    assert -0.2 < late < 1.2, f"title at {title_at:.2f} s, song heard at {heard_at:.2f} s"
    # The quieter 660 Hz song is levelled to the 440 Hz one by its measured loudness.
    a_level = np.median(levels(audio[: int(1.5 * RATE)], 440.0))
    e_level = np.median(high[-20:])
    assert abs(a_level - e_level) < 2.0


def test_the_show_says_what_is_on_air(live_run: dict[str, object]) -> None:
    show = live_run["show"]
    assert isinstance(show, dict)
    assert show["status"] == "live"
    assert show["now_playing"]["track"]["title"] == "Concert A"
    assert show["now_playing"]["auto_dj"] is False


def test_every_play_is_logged_with_its_listeners(live_run: dict[str, object]) -> None:
    plays = live_run["plays"]
    assert isinstance(plays, list) and len(plays) == 2, plays
    first, second = plays
    assert first["skipped"] is True and first["ended"] and second["ended"]
    # Played from going live until the skip, however long the scenario took to get there.
    took = live_run["first_song_s"]
    assert isinstance(took, float) and took > 14
    # Its end is when listeners heard it stop, a moment after the skip was answered.
    assert took - 2 < first["seconds"] < took + 1.0, (first, took)
    assert first["listeners"] == 0  # it started as the show went live, before anyone tuned in
    assert second["listeners"] >= 2  # the WebRTC listener and the second MP3 reader
    # About three listeners (WebRTC, MP3, HLS) for most of the song.
    assert first["listener_seconds"] > 1.5 * first["seconds"], first
