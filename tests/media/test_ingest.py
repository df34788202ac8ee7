"""DJ software broadcasting into a live show, with real peers: ffmpeg and Liquidsoap.

Each peer sends a 440 Hz sine over the Icecast source protocol into a live show whose queue
holds tone "songs" (660 Hz, then 550 Hz). A listener on /listen/{id}.mp3 hears 440 Hz; an
/admin/metadata update changes the ICY StreamTitle the listener reads; when the peer stops
(it freezes, or hangs up) the studio segues into the next queued song, and the program,
recorded frame by frame off the studio, never drops into silence across the switch.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.settings import Settings
from onair.studio.frames import SAMPLE_RATE
from tests.live import seed_songs, write_song
from tests.media import decode, dominant_frequency
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

SILENCE_RMS = 0.01  # -40 dBFS: a 20 ms window quieter than this is a gap


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    server: RunningServer
    source_port: int
    shows: int = 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ingest")
    port = free_port()
    settings = Settings(data_dir=root / "var", source_port=port, crossfade_s=1.0)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    warm, after = root / "warm.flac", root / "after.flac"
    write_song(warm, 660.0, 30.0, 0.3)
    write_song(after, 550.0, 30.0, 0.3)
    asyncio.run(seed_songs(settings.resolved_database_url, [(warm, "Warm Up"), (after, "After")]))
    with serve(create_app(settings, source_ingest=True)) as running:
        yield World(running, port)


@dataclass
class LiveShow:
    show_id: int
    key: str
    http: httpx.AsyncClient
    settings: dict[str, Any] = field(default_factory=dict)


async def go_live(world: World, http: httpx.AsyncClient) -> LiveShow:
    world.shows += 1
    if world.shows == 1:
        r = await http.post(
            "/api/v1/accounts/signup",
            json={"username": "djhost", "email": "dj@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
    else:
        r = await http.post(
            "/api/v1/accounts/login", json={"login": "djhost", "password": "password-1"}
        )
        assert r.status_code == 200, r.text
    show = (await http.post("/api/v1/shows", json={"title": f"DJ set {world.shows}"})).json()
    for q in ("warm up", "after"):
        found = (await http.get("/api/v1/catalog/search", params={"q": q})).json()["tracks"]
        r = await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": found[0]["id"]})
        assert r.status_code == 201, r.text
    source = (await http.get(f"/api/v1/shows/{show['id']}/source")).json()
    assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return LiveShow(int(show["id"]), source["key"], http, source)


@contextlib.asynccontextmanager
async def live_show(world: World) -> AsyncIterator[LiveShow]:
    """A new live show of the host's, ended afterwards whatever happens."""
    async with httpx.AsyncClient(base_url=world.server.url, timeout=20) as http:
        show = await go_live(world, http)
        try:
            yield show
        finally:
            await http.post(f"/api/v1/shows/{show.show_id}/end")


# --- the program as the studio renders it


def record_program(world: World, show_id: int) -> Any:
    async def subscribe() -> Any:
        station = world.server.app.state.onair.stations.get(show_id)
        return station.studio.subscribe(maxsize=3000)  # a minute of frames

    return world.server.call(subscribe())


def program_frames(world: World, subscription: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    async def drain() -> list[Any]:
        frames = []
        while subscription.qsize():
            frames.append(subscription.get_nowait())
        return frames

    frames = world.server.call(drain())
    return np.array([f.samples[0] for f in frames], dtype=np.float64)  # (frames, 960)


def frame_frequency(frame: np.ndarray[Any, Any]) -> float:
    """Which of the show's tones a 20 ms frame is (0 when silent)."""
    if np.sqrt(np.mean(frame**2)) < SILENCE_RMS:
        return 0.0
    t = np.arange(len(frame)) / SAMPLE_RATE
    taper = np.hanning(len(frame))
    strengths = {
        f: abs(np.dot(frame * taper, np.exp(-2j * np.pi * f * t))) for f in (440, 550, 660)
    }
    return float(max(strengths, key=lambda f: strengths[f]))


def check_falls_back_without_silence(frames: np.ndarray[Any, Any]) -> None:
    tones = [frame_frequency(f) for f in frames]
    live = [i for i, f in enumerate(tones) if f == 440]
    assert len(live) > 50, f"the live source was heard for only {len(live)} frames"
    last_live = live[-1]
    after = [i for i, f in enumerate(tones) if f == 550 and i > last_live]
    assert after, "the queue's next song (550 Hz) never followed the live source"
    first_after = after[0]
    assert first_after - last_live <= 5, f"{first_after - last_live} frames between live and song"
    # Every 20 ms window from a second before the switch to a second after has sound.
    span = frames[max(0, last_live - 50) : first_after + 50]
    rms = np.sqrt(np.mean(span**2, axis=1))
    assert rms.min() > SILENCE_RMS, f"a gap in the program: {20 * np.log10(rms.min()):.1f} dBFS"
    assert len(span) >= 90, "too little program recorded across the switch"


# --- a listener with ICY metadata


@dataclass
class IcyListener:
    audio: bytearray = field(default_factory=bytearray)
    titles: list[str] = field(default_factory=list)


async def listen(url: str, seconds: float, into: IcyListener) -> None:
    async with (
        httpx.AsyncClient() as http,
        http.stream("GET", url, headers={"Icy-MetaData": "1"}, timeout=20) as r,
    ):
        assert r.status_code == 200
        metaint = int(r.headers["icy-metaint"])
        buffer = bytearray()
        deadline = time.monotonic() + seconds
        async for chunk in r.aiter_raw():
            buffer += chunk
            while len(buffer) > metaint and len(buffer) >= metaint + 1 + buffer[metaint] * 16:
                length = buffer[metaint] * 16
                into.audio += buffer[:metaint]
                block = bytes(buffer[metaint + 1 : metaint + 1 + length]).rstrip(b"\0")
                if block:
                    into.titles.append(block.decode().split("StreamTitle='", 1)[1][:-2])
                del buffer[: metaint + 1 + length]
            if time.monotonic() > deadline:
                return


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def update_title(world: World, show: LiveShow, song: str, key: str | None = None) -> int:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"http://127.0.0.1:{world.source_port}/admin/metadata",
            params={"mode": "updinfo", "mount": f"/{show.show_id}", "song": song},
            headers=basic("source", key or show.key),
        )
    return r.status_code


async def studio_state(show: LiveShow) -> dict[str, Any]:
    r = await show.http.get(f"/api/v1/shows/{show.show_id}/studio")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_for_source(show: LiveShow, *, connected: bool = True) -> None:
    try:
        async with asyncio.timeout(10):
            while ((await studio_state(show))["source"] is not None) != connected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"the source's connected state never became {connected}") from None


# --- the peers


@contextlib.contextmanager
def peer(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


# (encoder, muxer, Content-Type) of each format a source may send
MP3 = ("libmp3lame", "mp3", "audio/mpeg")
OPUS = ("libopus", "ogg", "audio/ogg")
AAC = ("aac", "adts", "audio/aac")


def ffmpeg(
    url: str,
    *,
    legacy: bool = False,
    seconds: float = 30.0,
    codec: tuple[str, str, str] = MP3,
) -> list[str]:
    encoder, muxer, content_type = codec
    return [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-ac",
        "2",
        "-c:a",
        encoder,
        "-b:a",
        "128k",
        "-content_type",
        content_type,
        *(["-legacy_icecast", "1"] if legacy else []),
        # Ogg pages of 0.1 s, not FFmpeg's 1 s: a live stream, not a file.
        *(["-page_duration", "100000"] if muxer == "ogg" else []),
        "-f",
        muxer,
        url,
    ]


def liquidsoap_script(path: Path, port: int, show: LiveShow) -> list[str]:
    path.write_text(
        "settings.init.allow_root.set(true)\n"  # the test machine runs as root
        "settings.log.stdout.set(true)\n"
        "settings.log.level.set(2)\n"
        "output.icecast(%mp3(bitrate=128), host='127.0.0.1', "
        f"port={port}, password='{show.key}', mount='/{show.show_id}', "
        "fallible=true, sine(440.))\n"
    )
    return ["liquidsoap", "--quiet", str(path)]


def check_hears_440(listener: IcyListener) -> None:
    signal_ = decode(bytes(listener.audio), "mp3")
    assert len(signal_) > SAMPLE_RATE, "the listener received under a second of audio"
    tail = signal_[-SAMPLE_RATE:]
    assert abs(dominant_frequency(tail) - 440) < 5, dominant_frequency(tail)


async def run_peer(
    world: World, show: LiveShow, process: subprocess.Popen[bytes], title: str
) -> IcyListener:
    """Waits for the peer's music on air, listens, and changes the title half-way."""
    try:
        await wait_for_source(show)
    except AssertionError:
        process.kill()
        _, err = process.communicate(5)
        raise AssertionError(f"peer did not connect: {err.decode(errors='replace')}") from None
    await asyncio.sleep(1.5)  # the buffer fills and the live source takes over from the song
    listener = IcyListener()
    url = f"{world.server.url}/listen/{show.show_id}.mp3"
    listening = asyncio.create_task(listen(url, 4.0, listener))
    await asyncio.sleep(1.5)
    assert await update_title(world, show, title) == 200
    await listening
    return listener


async def test_ffmpeg_put_is_heard_titled_and_falls_back_when_it_freezes(
    world: World,
) -> None:
    async with live_show(world) as show:
        recording = record_program(world, show.show_id)
        url = f"icecast://source:{show.key}@127.0.0.1:{world.source_port}/{show.show_id}"
        with peer(ffmpeg(url)) as process:
            listener = await run_peer(world, show, process, "DJ Tone - Concert A")
            check_hears_440(listener)
            assert listener.titles[-1] == "DJ Tone - Concert A", listener.titles
            source = (await show.http.get(f"/api/v1/shows/{show.show_id}/source")).json()
            assert source["connected"] is True and source["key"] == show.key
            heard = (await studio_state(show))["now_playing"]
            assert (heard["title"], heard["artists"], heard["id"]) == (
                "Concert A",
                ["DJ Tone"],
                None,
            )
            # A second source into the same show is refused as a busy mount.
            busy = await put_status(world, show.show_id, show.key)
            assert busy == 409
            process.send_signal(signal.SIGSTOP)  # frozen: the socket stays open, no data
            await wait_for_source(show, connected=False)
            await asyncio.sleep(1.5)
        state = await studio_state(show)
        assert state["now_playing"]["title"] == "After", state
        check_falls_back_without_silence(program_frames(world, recording))


async def test_liquidsoap_is_heard_titled_and_falls_back_when_it_hangs_up(
    world: World, tmp_path: Path
) -> None:
    async with live_show(world) as show:
        recording = record_program(world, show.show_id)
        script = liquidsoap_script(tmp_path / "dj.liq", world.source_port, show)
        with peer(script) as process:
            listener = await run_peer(world, show, process, "Liq Tone - Also A")
            check_hears_440(listener)
            assert listener.titles[-1] == "Liq Tone - Also A", listener.titles
            process.terminate()  # hangs up: the socket closes
            process.wait(10)
            await wait_for_source(show, connected=False)
            await asyncio.sleep(1.5)
        state = await studio_state(show)
        assert state["now_playing"]["title"] == "After", state
        check_falls_back_without_silence(program_frames(world, recording))


@pytest.mark.parametrize(
    ("codec", "legacy"),
    [(MP3, True), (OPUS, False), (AAC, False)],
    ids=["mp3 over SOURCE", "ogg-opus over PUT", "aac over PUT"],
)
async def test_ffmpeg_other_methods_and_formats_are_heard(
    world: World, codec: tuple[str, str, str], legacy: bool
) -> None:
    async with live_show(world) as show:
        url = f"icecast://source:{show.key}@127.0.0.1:{world.source_port}/{show.show_id}.mp3"
        with peer(ffmpeg(url, legacy=legacy, codec=codec)) as process:
            listener = await run_peer(world, show, process, "Other - Tone")
            check_hears_440(listener)
            assert listener.titles[-1] == "Other - Tone"


# --- refusals over the wire


async def raw_exchange(port: int, request: bytes, *, read_for: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(read_for):
            return await reader.read(4096)
    finally:
        writer.close()


async def put_status(world: World, show_id: int, key: str) -> int:
    token = base64.b64encode(f"source:{key}".encode()).decode()
    answer = await raw_exchange(
        world.source_port,
        f"PUT /{show_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
        "Content-Type: audio/mpeg\r\nExpect: 100-continue\r\n\r\n".encode(),
    )
    return int(answer.split(b" ", 2)[1])


async def test_wrong_keys_poke_and_shows_that_are_not_live(world: World) -> None:
    async with live_show(world) as show:
        http = show.http
        port = world.source_port
        # ffmpeg with a wrong key is refused, and nothing plays.
        url = f"icecast://source:wrong-key@127.0.0.1:{port}/{show.show_id}"
        refused = await asyncio.create_subprocess_exec(
            *ffmpeg(url, seconds=2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            async with asyncio.timeout(20):
                _, err = await refused.communicate()
        finally:
            with contextlib.suppress(ProcessLookupError):
                refused.kill()
        assert refused.returncode != 0
        assert b"401" in err, err
        assert (await studio_state(show))["source"] is None
        assert await put_status(world, show.show_id, "wrong-key") == 401
        assert await update_title(world, show, "Nope", key="wrong-key") == 401
        # libshout's probe says what the server takes.
        poke = await raw_exchange(port, b"GET /admin/!POKE HTTP/1.0\r\n\r\n")
        assert poke.startswith(b"HTTP/1.0 200"), poke
        assert b"Allow: GET, PUT, SOURCE" in poke
        # The key of a show that has ended opens nothing.
        await http.post(f"/api/v1/shows/{show.show_id}/end")
        assert await put_status(world, show.show_id, show.key) == 403
        # A rotated key replaces the old one at once.
        rotated = (await http.post(f"/api/v1/shows/{show.show_id}/source/rotate")).json()
        assert rotated["key"] != show.key
        assert await put_status(world, show.show_id, show.key) == 401
        assert await put_status(world, show.show_id, rotated["key"]) == 403
        # Garbage and oversized heads are refused, and the server still answers afterwards.
        assert (await raw_exchange(port, b"\x16\x03\x01garbage\r\n\r\n")).startswith(
            b"HTTP/1.0 400"
        )
        huge = b"PUT /1 HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n"
        assert (await raw_exchange(port, huge)).startswith(b"HTTP/1.0 431")
        poke = await raw_exchange(port, b"GET /admin/!POKE HTTP/1.0\r\n\r\n")
        assert poke.startswith(b"HTTP/1.0 200")


async def test_the_console_shows_the_settings_and_listeners_never_see_the_key(
    world: World,
) -> None:
    async with live_show(world) as show:
        http = show.http
        console = await http.get(f"/shows/{show.show_id}/console")
        assert console.status_code == 200
        assert "Broadcast from DJ software" in console.text
        assert f"<code>{world.source_port}</code>" in console.text
        assert show.key not in console.text  # fetched only when the host asks
        assert show.settings["url"].endswith(f":{world.source_port}/{show.show_id}")
        async with httpx.AsyncClient(base_url=world.server.url, timeout=20) as anonymous:
            assert (await anonymous.get(f"/api/v1/shows/{show.show_id}/source")).status_code == 401
            for path in (f"/shows/{show.show_id}", f"/api/v1/shows/{show.show_id}"):
                page = await anonymous.get(path)
                assert page.status_code == 200 and show.key not in page.text
