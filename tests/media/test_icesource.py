"""The Icecast source protocol's edge cases: the parser, and the ingest server over a socket
with a stand-in show that records what reaches it (no studio, no peers)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onair.media.icesource import (
    MAX_HEAD,
    ChunkedBody,
    ProtocolError,
    parse_head,
    parse_mount,
)
from onair.media.ingest import IngestSettings, SourceIngest, serve_ingest
from onair.studio.livesource import LiveSource

KEY = "the-right-key"


def auth(user: str = "source", password: str = KEY) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- the parser


def test_a_put_head_is_parsed() -> None:
    request = parse_head(
        b"PUT /7.mp3 HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth().encode() + b"\r\n"
        b"Content-Type: audio/mpeg; charset=x\r\nExpect: 100-continue\r\n"
        b"Transfer-Encoding: chunked\r\nIce-Name: Night Set\r\nIcy-Genre: House"
    )
    assert (request.method, request.path, request.version) == ("PUT", "/7.mp3", "1.1")
    assert request.credentials() == ("source", KEY)
    assert request.content_type == "audio/mpeg"
    assert request.expects_continue and request.chunked
    assert (request.ice("name"), request.ice("genre")) == ("Night Set", "House")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"garbage", 400),
        (b"\x16\x03\x01\x02\x00", 400),
        (b"PUT /7 HTTP/2.0", 400),
        (b"PUT 7 HTTP/1.1", 400),
        (b"PU(T /7 HTTP/1.1", 400),
        (b"PUT /7 HTTP/1.1\r\nno colon here", 400),
        (b"PUT /7 HTTP/1.1\r\nbad name: x", 400),
        (b"PUT /7 HTTP/1.1\r\n" + b"X: y\r\n" * 100, 431),
        (b"PUT /7 HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, 431),
    ],
)
def test_bad_heads_are_refused_with_a_status(head: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_head(head)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("Bearer abc", None),
        ("Basic !!!notbase64", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        (auth("source", "pa:ss"), ("source", "pa:ss")),
    ],
)
def test_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    head = b"SOURCE /1 HTTP/1.0"
    if header is not None:
        head += b"\r\nAuthorization: " + header.encode()
    assert parse_head(head).credentials() == expected


def test_a_bad_content_length_is_refused() -> None:
    with pytest.raises(ProtocolError):
        _ = parse_head(b"PUT /1 HTTP/1.1\r\nContent-Length: -5").content_length


@pytest.mark.parametrize(
    ("path", "show"),
    [
        ("/7", 7),
        ("/7.mp3", 7),
        ("/show/7", 7),
        ("/12.ogg", 12),
        ("/7/", 7),
        ("/", None),
        ("/abc", None),
        ("/7.wav", None),
        ("/12345678901", None),
    ],
)
def test_mounts(path: str, show: int | None) -> None:
    assert parse_mount(path) == show


def test_the_metadata_query_takes_utf8_and_latin1() -> None:
    utf8 = parse_head(b"GET /admin/metadata?mode=updinfo&song=Bj%C3%B6rk%20-%20J%C3%B3ga HTTP/1.0")
    assert utf8.query["song"] == "Björk - Jóga"
    latin1 = parse_head(b"GET /admin/metadata?song=Bj%F6rk HTTP/1.0")
    assert latin1.query["song"] == "Björk"


def chunked(payload: bytes, sizes: list[int]) -> bytes:
    out = bytearray()
    at = 0
    for size in sizes:
        piece = payload[at : at + size]
        at += size
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return bytes(out + b"0\r\nTrailer: x\r\n\r\n")


@given(
    payload=st.binary(min_size=1, max_size=3000),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=10),
    cut=st.integers(1, 50),
)
def test_chunked_bodies_come_apart_however_they_are_split(
    payload: bytes, sizes: list[int], cut: int
) -> None:
    sizes = [*sizes, len(payload)]  # whatever is left goes in the last chunk
    wire = chunked(payload, sizes)
    body = ChunkedBody()
    out = b"".join(body.feed(wire[i : i + cut]) for i in range(0, len(wire), cut))
    assert out == payload
    assert body.done


@pytest.mark.parametrize(
    "wire",
    [b"zz\r\n", b"5\r\nhelloX\r\n", b"1" * 2000, b"\r\n", b"123456789\r\n"],
)
def test_broken_chunking_is_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedBody().feed(wire)


# --- the server, with a stand-in show


@dataclass
class FakeShow:
    sources: list[LiveSource] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)

    def open_source(self, name: str, container: str | None, title: str = "") -> LiveSource:
        show = self

        class Recording(LiveSource):
            def feed(self, data: bytes) -> bool:
                show.received.extend(data)
                return True

        source = Recording(name, container)
        self.sources.append(source)
        return source


@dataclass
class Ingest:
    port: int
    show: FakeShow


@pytest.fixture
async def ingest() -> AsyncIterator[Ingest]:
    show = FakeShow()
    live = {7: show}

    async def check(show_id: int, key: str) -> bool:
        return show_id in (7, 8) and key == KEY

    server = await serve_ingest(
        SourceIngest(live.get, check, IngestSettings(head_timeout_s=0.5, stall_s=0.5)),
        "127.0.0.1",
        0,
    )
    yield Ingest(server.sockets[0].getsockname()[1], show)
    server.close()
    await server.wait_closed()


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_chunked_put_with_expect_continue_reaches_the_show(ingest: Ingest) -> None:
    head = (
        f"PUT /7 HTTP/1.1\r\nAuthorization: {auth()}\r\nContent-Type: audio/mpeg\r\n"
        "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    payload = bytes(range(256)) * 40
    answer = await exchange(
        ingest.port, head, chunked(payload, [1000, 3, 5000, len(payload)]), pause=0.05
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), answer
    assert bytes(ingest.show.received) == payload
    assert ingest.show.sources[0].end_reason == "ended"


async def test_a_source_body_runs_until_the_socket_closes(ingest: Ingest) -> None:
    head = f"SOURCE /7.mp3 HTTP/1.0\r\nAuthorization: {auth()}\r\nIce-Name: Set\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    writer.write(head.encode() + b"abc")
    writer.write(b"def")
    await writer.drain()
    answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200 OK")
    writer.close()
    await asyncio.sleep(0.2)
    assert bytes(ingest.show.received) == b"abcdef"
    assert ingest.show.sources[0].name == "Set"
    assert ingest.show.sources[0].end_reason == "disconnected"


async def test_a_silent_source_is_hung_up_on(ingest: Ingest) -> None:
    head = f"SOURCE /7 HTTP/1.0\r\nAuthorization: {auth()}\r\n\r\n".encode()
    answer = await exchange(ingest.port, head)  # then nothing: the server hangs up in 0.5 s
    assert answer.startswith(b"HTTP/1.0 200 OK")
    assert ingest.show.sources[0].end_reason == "no data"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (b"DELETE /7 HTTP/1.1\r\n\r\n", 405),
        (b"PUT /7 HTTP/1.1\r\n\r\n", 401),  # no auth
        (f"PUT /7 HTTP/1.1\r\nAuthorization: {auth(password='nope')}\r\n\r\n".encode(), 401),
        (f"PUT /7 HTTP/1.1\r\nAuthorization: {auth(user='admin')}\r\n\r\n".encode(), 401),
        (f"PUT /9 HTTP/1.1\r\nAuthorization: {auth()}\r\n\r\n".encode(), 401),  # no such show
        (f"PUT /8 HTTP/1.1\r\nAuthorization: {auth()}\r\n\r\n".encode(), 403),  # not live
        (f"PUT /nope HTTP/1.1\r\nAuthorization: {auth()}\r\n\r\n".encode(), 404),
        (f"PUT /7 HTTP/1.1\r\nAuthorization: {auth()}\r\nContent-Type: video/mp4\r\n\r\n", 415),
        (b"GET /listen/7.mp3 HTTP/1.1\r\n\r\n", 404),
        (b"GET /admin/metadata?mode=updinfo&mount=/7&song=x HTTP/1.0\r\n\r\n", 401),
        (b"\x00\x01\x02\r\n\r\n", 400),
        (b"PUT /7 HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n", 431),
    ],
)
async def test_refusals(ingest: Ingest, request_: bytes | str, expected: int) -> None:
    wire = request_.encode() if isinstance(request_, str) else request_
    answer = await exchange(ingest.port, wire)
    assert status(answer) == expected, answer
    assert b"Content-Length:" in answer
    if expected == 401:
        assert b'WWW-Authenticate: Basic realm="OnAir source"' in answer
    assert not ingest.show.sources  # nothing reached the show


async def test_a_slow_head_is_hung_up_on(ingest: Ingest) -> None:
    answer = await exchange(ingest.port, b"PUT /7 HTTP/1.1\r\n", b"X-Slow: 1\r\n", pause=0.3)
    assert status(answer) == 408


async def test_poke_and_metadata(ingest: Ingest) -> None:
    poke = await exchange(ingest.port, b"GET /admin/!POKE HTTP/1.0\r\n\r\n")
    assert status(poke) == 200 and b"Allow: GET, PUT, SOURCE" in poke
    # No source on the mount yet: nothing to title.
    update = (
        "GET /admin/metadata?mode=updinfo&mount=%2F7&song=A%20-%20B HTTP/1.0\r\n"
        f"Authorization: {auth()}\r\n\r\n"
    ).encode()
    assert status(await exchange(ingest.port, update)) == 400
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.port)
    writer.write(f"SOURCE /7 HTTP/1.0\r\nAuthorization: {auth()}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    try:
        answer = await exchange(ingest.port, update)
        assert status(answer) == 200 and b"<return>1</return>" in answer
        assert ingest.show.sources[0].title == "A - B"
        busy = f"PUT /7 HTTP/1.1\r\nAuthorization: {auth()}\r\n\r\n".encode()
        assert status(await exchange(ingest.port, busy)) == 409
    finally:
        writer.close()
