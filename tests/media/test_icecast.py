"""Icecast-style streams over a real uvicorn: ICY metadata, audio checked as audio, slow clients."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from onair.media import (
    ProgramFeed,
    StationInfo,
    StreamFront,
    StreamSettings,
    icecast_mount,
    serve_streams,
    stream_routes,
)
from onair.media.icecast import icy_block
from onair.studio.frames import SAMPLE_RATE
from tests.media import (
    START_PTS,
    Song,
    decode,
    dominant_frequency,
    tone_changes,
    tone_studio,
    wait_for,
)
from tests.server import serve

pytestmark = pytest.mark.media

SHOW = 7
CHANGE_PTS = START_PTS + 4 * SAMPLE_RATE
SONGS = [Song(START_PTS, 440.0, "Alpha Band - Low Song"), Song(CHANGE_PTS, 880.0, "Beta - High")]
FRAME_BYTES = 384  # 128 kb/s MP3 at 48 kHz
FINE_METAINT = 4000


@dataclass
class Capture:
    headers: httpx.Headers
    audio: bytes
    titles: list[tuple[int, str]]
    """(audio bytes before the block, title) for every non-empty metadata block."""
    blocks: int


def _split_icy(raw: bytes, metaint: int) -> tuple[bytes, list[tuple[int, str]], int]:
    audio = bytearray()
    titles: list[tuple[int, str]] = []
    blocks = 0
    position = 0
    while position + metaint < len(raw):
        audio += raw[position : position + metaint]
        position += metaint
        length = raw[position] * 16
        if position + 1 + length > len(raw):
            break
        text = raw[position + 1 : position + 1 + length].rstrip(b"\0").decode()
        blocks += 1
        position += 1 + length
        if text:
            assert text.startswith("StreamTitle='") and text.endswith("';"), text
            titles.append((len(audio), text[len("StreamTitle='") : -2]))
    return bytes(audio), titles, blocks


async def capture(
    url: str, *, icy: bool, seconds: float, client: httpx.AsyncClient | None = None
) -> Capture:
    if client is None:
        async with httpx.AsyncClient(timeout=10) as own:
            return await capture(url, icy=icy, seconds=seconds, client=own)
    headers = {"Icy-MetaData": "1"} if icy else {}
    raw = bytearray()
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        deadline = time.monotonic() + seconds
        async for chunk in response.aiter_raw():
            raw += chunk
            if time.monotonic() > deadline:
                break
    metaint = int(response.headers.get("icy-metaint", "0"))
    if not metaint:
        return Capture(response.headers, bytes(raw), [], 0)
    audio, titles, blocks = _split_icy(bytes(raw), metaint)
    return Capture(response.headers, audio, titles, blocks)


def _samples_at_offsets(audio: bytes) -> tuple[list[int], list[int]]:
    """Byte offset of every MP3 frame and the decoded sample index where it starts."""
    offsets, starts = [], []
    decoded = 0
    with av.open(io.BytesIO(audio), format="mp3") as container:
        for packet in container.demux(audio=0):
            if packet.pos is None or packet.pos < 0:
                continue
            offsets.append(packet.pos)
            starts.append(decoded)
            for frame in packet.decode():
                decoded += frame.samples
    return offsets, starts


def _sample_at(audio: bytes, offset: int) -> int:
    offsets, starts = _samples_at_offsets(audio)
    i = max(j for j, o in enumerate(offsets) if o <= offset)
    return starts[i] + (offset - offsets[i]) * 1152 // FRAME_BYTES


@contextmanager
def live_show(settings: StreamSettings | None = None) -> Iterator[tuple[ProgramFeed, str]]:
    feed = ProgramFeed(SHOW, StationInfo("Test FM", "Jazz", "Tones all day"), encoder_grace=0.2)

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == SHOW else None

    base = settings or StreamSettings()
    app = Starlette(
        routes=[
            Mount("/asgi", stream_routes(lookup, settings=StreamSettings(transport_handoff=False))),
            Mount("/fine", stream_routes(lookup, settings=StreamSettings(metaint=FINE_METAINT))),
            Mount("/listen", stream_routes(lookup, settings=base)),
        ]
    )
    with serve(app) as server:  # type: ignore[arg-type]
        yield feed, server.url
    feed.close()


async def test_icy_titles_change_with_the_audio_and_plain_clients_get_none() -> None:
    with (
        live_show() as (feed, url),
        tone_studio(feed, SONGS, speed=2.0) as studio,
    ):
        # One client for all (making one costs a TLS context: slow enough to skew the joins).
        async with httpx.AsyncClient(timeout=10) as client:
            # Listeners join a show in progress, well before the song change.
            await asyncio.to_thread(studio.wait_until, START_PTS + SAMPLE_RATE)
            icy, fine, plain, portable = await asyncio.gather(
                capture(f"{url}/listen/{SHOW}.mp3", icy=True, seconds=4, client=client),
                capture(f"{url}/fine/{SHOW}.mp3", icy=True, seconds=4, client=client),
                capture(f"{url}/listen/{SHOW}.mp3", icy=False, seconds=4, client=client),
                capture(f"{url}/asgi/{SHOW}.mp3", icy=True, seconds=4, client=client),
            )
        mount = icecast_mount(feed, "mp3")
        assert feed.subscriber_count == 1  # four listeners, one encoder

    headers = icy.headers
    assert headers["content-type"] == "audio/mpeg"
    assert headers["icy-metaint"] == "16000"
    assert headers["icy-name"] == "Test FM"
    assert headers["icy-genre"] == "Jazz"
    assert headers["icy-description"] == "Tones all day"
    assert headers["icy-br"] == "128"
    assert "no-cache" in headers["cache-control"]
    assert "icy-metaint" not in plain.headers
    assert portable.headers["icy-metaint"] == "16000"
    assert mount.dropped == 0

    for capture_ in (icy, fine, plain, portable):
        audio = capture_.audio
        assert audio[:2] == b"\xff\xfb"  # starts on a frame boundary (burst-on-connect)
        samples = decode(audio, "mp3")
        assert len(samples) > 4 * SAMPLE_RATE  # the burst plus real time at double speed
        change = tone_changes(samples, 440.0, 880.0)
        assert change is not None, "the song change is in every stream"
        assert dominant_frequency(samples[change - 24000 : change - 2400]) == pytest.approx(
            440, abs=5
        )
        assert dominant_frequency(samples[change + 2400 : change + 24000]) == pytest.approx(
            880, abs=5
        )
    # Without Icy-MetaData the stream is pure MP3: every byte is in a frame.
    assert b"StreamTitle" not in plain.audio
    frames = len(plain.audio) // FRAME_BYTES
    assert len(decode(plain.audio, "mp3")) >= (frames - 2) * 1152

    for capture_, metaint in ((icy, 16000), (fine, FINE_METAINT), (portable, 16000)):
        titles = capture_.titles
        assert [t for _, t in titles] == ["Alpha Band - Low Song", "Beta - High"], (metaint, titles)
        assert capture_.blocks >= len(capture_.audio) // metaint - 1  # empty blocks between
        samples = decode(capture_.audio, "mp3")
        change = tone_changes(samples, 440.0, 880.0)
        assert change is not None
        title_at = _sample_at(capture_.audio, titles[1][0])
        late = (title_at - change) / SAMPLE_RATE
        block_seconds = metaint / 16000
        # Never before the new song is heard, and in the first block after it.
        assert -0.03 <= late <= block_seconds + 0.05, (metaint, late)
    fine_late = (_sample_at(fine.audio, fine.titles[1][0]) - change) / SAMPLE_RATE
    assert fine_late <= 0.3


async def test_aac_stream_is_adts_and_decodes_to_the_tone() -> None:
    with live_show() as (feed, url), tone_studio(feed, SONGS[:1], speed=2.0):
        got = await capture(f"{url}/listen/{SHOW}.aac", icy=False, seconds=2.0)
    assert got.headers["content-type"] == "audio/aac"
    assert got.audio[:2] == b"\xff\xf1"
    samples = decode(got.audio, "aac")
    assert len(samples) > SAMPLE_RATE
    assert dominant_frequency(samples[-SAMPLE_RATE:]) == pytest.approx(440, abs=5)


def _stalled_listener(port: int, path: str) -> socket.socket:
    """A client that asks for the stream and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n".encode())
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def test_a_stalled_listener_is_dropped_and_others_keep_full_rate() -> None:
    settings = StreamSettings(max_backlog_seconds=1.0, send_buffer_bytes=8192)
    with (
        live_show(settings) as (feed, url),
        tone_studio(feed, SONGS[:1], speed=4.0) as studio,
    ):
        port = int(url.rsplit(":", 1)[1])
        stalled = _stalled_listener(port, f"/listen/{SHOW}.mp3")
        t0_pts = studio.pts
        healthy = await capture(f"{url}/listen/{SHOW}.mp3", icy=False, seconds=4.0)
        program_seconds = (studio.pts - t0_pts) / SAMPLE_RATE
        mount = icecast_mount(feed, "mp3")
        assert mount.dropped == 1
        assert _closed_by_server(stalled)
        stalled.close()
    # The healthy listener got the whole program meanwhile (plus its burst), at 4x speed.
    assert len(healthy.audio) >= 0.9 * program_seconds * 16000
    assert mount.listener_count == 0


def test_the_encoder_starts_with_the_first_listener_and_stops_after_the_last() -> None:
    def threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("encoder-mp3")]

    with live_show() as (feed, url), tone_studio(feed, SONGS[:1], speed=1.0):
        server_port = int(url.rsplit(":", 1)[1])
        time.sleep(0.2)
        assert feed.subscriber_count == 0 and not threads()
        clients = []
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", server_port))
            sock.sendall(f"GET /listen/{SHOW}.mp3 HTTP/1.0\r\n\r\n".encode())
            clients.append(sock)
        mount = icecast_mount(feed, "mp3")
        assert wait_for(lambda: mount.listener_count == 10)
        assert feed.subscriber_count == 1 and threads() == [f"encoder-mp3-show{SHOW}"]
        assert mount.encoder.starts == 1
        head = clients[0].recv(4096)
        assert head.startswith(b"HTTP/1.0 200 OK\r\n")  # as Icecast answers: no chunking
        for sock in clients:
            sock.close()
        assert wait_for(lambda: mount.listener_count == 0)
        assert wait_for(lambda: not mount.encoder.running)
        assert feed.subscriber_count == 0
        assert wait_for(lambda: not threads())


async def test_not_live_shows_are_404_json_and_head_has_no_body() -> None:
    feed = ProgramFeed(SHOW, StationInfo("Test FM"))

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == SHOW else None

    app = Starlette(routes=[Mount("/listen", stream_routes(lookup))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://radio.test") as client:
        for path in ("9.mp3", "9.aac", "9.m3u8", "9.m3u", "9.pls", "9/hls/1.ts"):
            r = await client.get(f"/listen/{path}")
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_live", path
        r = await client.head(f"/listen/{SHOW}.mp3")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-type"] == "audio/mpeg"
        r = await client.post(f"/listen/{SHOW}.mp3")
        assert r.status_code == 405

        m3u = await client.get(f"/listen/{SHOW}.m3u")
        assert m3u.headers["content-type"].startswith("audio/x-mpegurl")
        assert m3u.text == f"#EXTM3U\n#EXTINF:-1,Test FM\nhttp://radio.test/listen/{SHOW}.mp3\n"
        pls = await client.get(f"/listen/{SHOW}.pls")
        assert pls.headers["content-type"].startswith("audio/x-scpls")
        assert pls.text.splitlines() == [
            "[playlist]",
            "NumberOfEntries=1",
            f"File1=http://radio.test/listen/{SHOW}.mp3",
            "Title1=Test FM",
            "Length1=-1",
            "Version=2",
        ]
    feed.close()


async def test_stream_front_serves_streams_ahead_of_the_app() -> None:
    feed = ProgramFeed(SHOW, StationInfo("Front FM"), encoder_grace=0.0)

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == SHOW else None

    inner = Starlette(routes=[Mount("/listen", stream_routes(lookup))])
    app = StreamFront(inner, lookup)
    with serve(app) as server, tone_studio(feed, SONGS[:1], speed=2.0):  # type: ignore[arg-type]
        got = await capture(f"{server.url}/listen/{SHOW}.mp3", icy=True, seconds=1.5)
        async with httpx.AsyncClient() as client:
            pls = await client.get(f"{server.url}/listen/{SHOW}.pls")  # passed through
    assert got.headers["icy-name"] == "Front FM"
    assert got.titles == [(16000, "Alpha Band - Low Song")]
    assert dominant_frequency(decode(got.audio, "mp3")[-24000:]) == pytest.approx(440, abs=5)
    assert pls.status_code == 200 and "File1=" in pls.text
    feed.close()


async def test_dedicated_server_streams_and_refuses_cleanly() -> None:
    feed = ProgramFeed(SHOW, StationInfo("Lean FM"), encoder_grace=0.0)

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == SHOW else None

    server = await serve_streams(lookup, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with tone_studio(feed, SONGS[:1], speed=2.0):
            got = await capture(f"http://127.0.0.1:{port}/listen/{SHOW}.mp3", icy=True, seconds=1)
            async with httpx.AsyncClient() as client:
                missing = await client.get(f"http://127.0.0.1:{port}/listen/8.mp3")
                unknown = await client.get(f"http://127.0.0.1:{port}/other")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"BREW /pot HTTP/1.1\r\n\r\n")
            refused = await reader.read()
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
        feed.close()
    assert got.headers["icy-name"] == "Lean FM"
    assert got.titles[0][1] == "Alpha Band - Low Song"
    assert dominant_frequency(decode(got.audio, "mp3")[-24000:]) == pytest.approx(440, abs=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_live"
    assert unknown.status_code == 404
    assert refused.startswith(b"HTTP/1.1 405")


def test_icy_block_is_padded_and_length_prefixed() -> None:
    block = icy_block("Artist - Title")
    text = b"StreamTitle='Artist - Title';"
    assert block[0] == 2 and len(block) == 33
    assert block[1:].rstrip(b"\0") == text
    long = icy_block("x" * 5000)
    assert long[0] == 255 and len(long) == 1 + 255 * 16
    assert icy_block("Bad\r\nTitle")[1:].rstrip(b"\0") == b"StreamTitle='BadTitle';"
