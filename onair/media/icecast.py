"""Icecast-style continuous HTTP streams: `/listen/{id}.mp3` and `/listen/{id}.aac`, ICY metadata.

One `IcecastMount` per show and format fans the shared encoder's packets out to its listeners.
The encoder's worker thread groups packets into batches of about `write_interval` seconds (whole
codec frames) and hands each batch to the event loop once; the loop then writes the same bytes
object to every listener. That per-listener step is the whole cost of a listener, so it is kept
to one socket write per batch (several MP3 frames per write) and, when the client asked for ICY
metadata, a counter that splices a metadata block in every `metaint` bytes.

Listeners are served in one of two ways:

- **transport** (the default under uvicorn, and the dedicated `serve_streams` server): the
  response head is written by us and every batch goes straight to the connection's transport
  from the fan-out loop, with no coroutine step per write. A listener whose unsent backlog
  passes `max_backlog_seconds` is aborted, so a stalled client never slows the others.
  The kernel send buffer is capped too (`send_buffer_bytes`), or a stalled client would hide
  megabytes there before the backlog showed.
- **ASGI** (any other server, or `transport_handoff=False`): a coroutine per listener sends the
  pending batches with `more_body=True`; its backlog is bounded the same way, but only the server
  can close the socket, so a dropped listener's connection closes as the server sees fit.

New listeners first get the last `burst_seconds` of audio (Icecast's burst-on-connect), starting
at a frame boundary, so players start at once.

ICY titles follow what is heard: a metadata block placed after byte N of the stream carries the
title of the codec frame that byte N-1 belongs to, so a new title appears in the first block after
the new song's first frame, never before it (at most `metaint` bytes late).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from onair.errors import error_body
from onair.media.audience import Audience, is_smart_speaker
from onair.media.encoder import EncodedPacket, Encoder, shared_encoder
from onair.media.feed import FeedLookup, ProgramFeed
from onair.media.hls import HlsSettings, hls_routes
from onair.media.playlists import playlist_routes
from onair.studio.frames import SAMPLE_RATE

__all__ = [
    "Batch",
    "IcecastMount",
    "StreamFormat",
    "StreamFront",
    "StreamSettings",
    "icecast_mount",
    "serve_streams",
    "stream_routes",
]

log = logging.getLogger("onair.media.icecast")

StreamFormat = Literal["mp3", "aac"]

MAX_REQUEST_HEAD = 8192
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StreamSettings:
    """How the Icecast-style streams behave; the defaults are Icecast 2's where it has one."""

    metaint: int = 16_000
    """Audio bytes between ICY metadata blocks (Icecast's default)."""
    burst_seconds: float = 1.0
    """Recent audio a new listener gets at once, so playback starts without waiting."""
    write_interval: float = 0.1
    """Audio per socket write: four MP3 frames; more means fewer writes, more latency."""
    max_backlog_seconds: float = 10.0
    """Unsent audio a listener may fall behind by before it is dropped."""
    send_buffer_bytes: int = 64 * 1024
    """Kernel send buffer per listener (SO_SNDBUF), so a stalled client shows as backlog."""
    transport_handoff: bool = True
    """Under uvicorn, write to the connection directly rather than through ASGI `send`."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A run of whole codec frames, written to every listener as one bytes object."""

    data: bytes
    offsets: tuple[int, ...]
    """Byte offset of each frame in `data`."""
    pts: tuple[int, ...]
    """Program pts of each frame."""

    def pts_at(self, position: int) -> int:
        """The pts of the frame that byte `position` of `data` belongs to."""
        return self.pts[bisect.bisect_right(self.offsets, position) - 1]


class _Transport(Protocol):
    """The part of an asyncio (or uvloop) transport a listener uses."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


# --- ICY metadata


def icy_block(title: str) -> bytes:
    """An ICY metadata block: a length byte (times 16) then `StreamTitle='…';` padded with NULs."""
    title = _CONTROL.sub("", title)
    text = f"StreamTitle='{title}';".encode()
    while len(text) > 255 * 16:  # the length byte cannot say more; cut whole characters
        title = title[:-1]
        text = f"StreamTitle='{title}';".encode()
    blocks = -(-len(text) // 16)
    return bytes((blocks,)) + text.ljust(blocks * 16, b"\0")


_EMPTY_BLOCK = b"\0"
"""The block for "title unchanged" (length zero)."""


class _Listener:
    """What every listener does with a batch: ICY splicing; subclasses send the result."""

    __slots__ = ("_metaint", "_title", "_until_meta", "mount")

    def __init__(self, mount: IcecastMount, metaint: int) -> None:
        self.mount = mount
        self._metaint = metaint
        self._until_meta = metaint
        self._title: str | None = None

    def deliver(self, batch: Batch) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """The show has ended: finish the response cleanly."""
        raise NotImplementedError

    def abort(self) -> None:
        """Dropped: close at once, losing whatever is unsent."""
        raise NotImplementedError

    def _payload(self, batch: Batch) -> bytes:
        data = batch.data
        if not self._metaint:
            return data
        size = len(data)
        if self._until_meta > size:  # the common case: no block falls in this batch
            self._until_meta -= size
            return data
        parts: list[bytes] = []
        position = 0
        while self._until_meta <= size - position:
            end = position + self._until_meta
            parts.append(data[position:end])
            parts.append(self._block(batch.pts_at(end - 1)))
            position = end
            self._until_meta = self._metaint
        parts.append(data[position:])
        self._until_meta -= size - position
        return b"".join(parts)

    def _block(self, pts: int) -> bytes:
        title = self.mount.feed.title_at(pts)
        if title == self._title:
            return _EMPTY_BLOCK
        self._title = title
        return self.mount.icy_block(title)


class _TransportListener(_Listener):
    """A listener we write to directly: one `transport.write` per batch, nothing else."""

    __slots__ = ("_transport",)

    def __init__(self, mount: IcecastMount, metaint: int, transport: _Transport) -> None:
        super().__init__(mount, metaint)
        self._transport = transport

    def deliver(self, batch: Batch) -> None:
        transport = self._transport
        if transport.is_closing():
            self.mount.leave(self)
            return
        transport.write(self._payload(batch))
        if transport.get_write_buffer_size() > self.mount.max_backlog_bytes:
            self.mount.drop(self, "too slow")

    def end(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()


class _AsgiListener(_Listener):
    """A listener behind ASGI `send`: pending batches, sent by its own coroutine."""

    __slots__ = (
        "_aborted",
        "_ended",
        "_loop",
        "_pending",
        "_pending_bytes",
        "_sending",
        "_task",
        "_waiter",
    )

    def __init__(self, mount: IcecastMount, metaint: int) -> None:
        super().__init__(mount, metaint)
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ended = False
        self._aborted = False
        self._sending = False

    def deliver(self, batch: Batch) -> None:
        payload = self._payload(batch)
        self._pending.append(payload)
        self._pending_bytes += len(payload)
        if self._pending_bytes > self.mount.max_backlog_bytes:
            self.mount.drop(self, "too slow")
            return
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def abort(self) -> None:
        self._ended = self._aborted = True
        self._pending.clear()
        if self._sending and self._task is not None:
            # Stuck in `send` behind a full socket: only cancelling gets it out.
            self._task.cancel()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self, send: Send) -> None:
        self._task = asyncio.current_task()
        try:
            while True:
                if not self._pending and not self._ended:
                    self._waiter = self._loop.create_future()
                    await self._waiter
                    self._waiter = None
                if self._aborted:
                    return
                if self._pending:
                    body = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
                    self._pending.clear()
                    self._pending_bytes = 0
                    self._sending = True
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    self._sending = False
                elif self._ended:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
        except asyncio.CancelledError:
            task = self._task
            if not self._aborted or task is None:
                raise
            task.uncancel()  # our own drop, not a shutdown: end this response quietly


# --- the fan-out


class IcecastMount:
    """One show's stream in one format, and its listeners. Lives on one event loop."""

    def __init__(self, feed: ProgramFeed, encoder: Encoder, settings: StreamSettings) -> None:
        self.feed = feed
        self.encoder = encoder
        self.settings = settings
        byte_rate = encoder.bit_rate // 8
        self._burst_bytes = int(settings.burst_seconds * byte_rate)
        # A new listener starts a burst behind: that must never count as falling behind.
        self.max_backlog_bytes = max(
            int(settings.max_backlog_seconds * byte_rate), 2 * self._burst_bytes
        )
        self._batch_samples = max(1, round(settings.write_interval * SAMPLE_RATE))
        self._loop: asyncio.AbstractEventLoop | None = None
        # A tuple rebuilt on join/leave, so the fan-out iterates without copying.
        self._listeners: tuple[_Listener, ...] = ()
        self._burst: collections.deque[Batch] = collections.deque()
        self._burst_size = 0
        self._attached = False
        self._closed = False
        self._icy_cache: dict[str, bytes] = {}
        # Worker-thread side: packets gathered into the next batch.
        self._gathered: list[EncodedPacket] = []
        self._gathered_samples = 0
        self.dropped = 0
        """Listeners dropped for falling behind (for tests and metrics)."""
        self.joins = 0
        """Listeners who have joined since the mount was made (for the play log)."""
        self._speakers: set[_Listener] = set()

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    @property
    def audience(self) -> Audience:
        speakers = len(self._speakers)
        return Audience(
            stream=len(self._listeners) - speakers, smart_speaker=speakers, joins=self.joins
        )

    @property
    def content_type(self) -> str:
        return self.encoder.content_type

    def join(self, listener: _Listener, user_agent: str = "") -> None:
        """Adds a listener (on the loop), starting the encoder for the first one."""
        if self._closed:
            raise RuntimeError(f"show {self.feed.show_id} has ended")
        if not self._attached:
            self._loop = asyncio.get_running_loop()
            self._gathered, self._gathered_samples = [], 0
            self.encoder.attach(self._on_packet)
            self._attached = True
        self._listeners = (*self._listeners, listener)
        self.joins += 1
        if is_smart_speaker(user_agent):
            self._speakers.add(listener)
        for batch in self._burst:
            listener.deliver(batch)

    def leave(self, listener: _Listener) -> None:
        if listener not in self._listeners:
            return
        self._listeners = tuple(x for x in self._listeners if x is not listener)
        self._speakers.discard(listener)
        if not self._listeners and self._attached:
            # Nobody to burst to: stale audio would be a jump for the next listener.
            self._attached = False
            self.encoder.detach(self._on_packet)
            self._burst.clear()
            self._burst_size = 0

    def drop(self, listener: _Listener, reason: str) -> None:
        if listener not in self._listeners:
            return
        self.dropped += 1
        log.info(
            "dropped listener show=%s format=%s reason=%s",
            self.feed.show_id,
            self.encoder.format,
            reason,
        )
        self.leave(listener)
        listener.abort()

    def icy_block(self, title: str) -> bytes:
        block = self._icy_cache.get(title)
        if block is None:
            if len(self._icy_cache) > 64:
                self._icy_cache.clear()
            block = self._icy_cache[title] = icy_block(title)
        return block

    def close(self) -> None:
        """The show has ended: every listener's response ends and the encoder is let go."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._end_all()
        else:
            loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        listeners = self._listeners
        for listener in listeners:
            self.leave(listener)
            listener.end()

    # Worker thread: gather packets; one loop wake-up per batch, not per packet.
    def _on_packet(self, packet: EncodedPacket) -> None:
        self._gathered.append(packet)
        self._gathered_samples += packet.duration
        if self._gathered_samples < self._batch_samples - packet.duration // 2:
            return
        packets, self._gathered, self._gathered_samples = self._gathered, [], 0
        offsets: list[int] = []
        position = 0
        for p in packets:
            offsets.append(position)
            position += len(p.data)
        batch = Batch(
            b"".join(p.data for p in packets), tuple(offsets), tuple(p.pts for p in packets)
        )
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed under us
                loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: Batch) -> None:
        if not self._attached:
            return
        self._burst.append(batch)
        self._burst_size += len(batch.data)
        while self._burst_size - len(self._burst[0].data) >= self._burst_bytes:
            self._burst_size -= len(self._burst.popleft().data)
        for listener in self._listeners:
            try:
                listener.deliver(batch)
            except Exception:
                log.exception("listener failed show=%s", self.feed.show_id)
                self.drop(listener, "error")


def icecast_mount(
    feed: ProgramFeed, fmt: StreamFormat, settings: StreamSettings | None = None
) -> IcecastMount:
    """The show's one mount for `fmt` (the first caller's settings apply)."""
    encoder = shared_encoder(feed, fmt)  # outside the factory: it takes the feed's lock too
    return feed.shared(
        f"icecast.{fmt}", lambda: IcecastMount(feed, encoder, settings or StreamSettings())
    )


# --- HTTP


def _header_value(value: str) -> bytes:
    return _CONTROL.sub(" ", value).strip().encode()


def _stream_headers(mount: IcecastMount, metaint: int) -> list[tuple[bytes, bytes]]:
    info = mount.feed.info
    headers = [
        (b"content-type", mount.content_type.encode()),
        (b"icy-name", _header_value(info.name)),
        (b"icy-genre", _header_value(info.genre)),
        (b"icy-description", _header_value(info.description)),
        (b"icy-br", str(mount.encoder.bit_rate // 1000).encode()),
        (b"icy-sr", str(SAMPLE_RATE).encode()),
        (b"icy-pub", b"0"),
        (b"cache-control", b"no-cache, no-store"),
        (b"pragma", b"no-cache"),
        (b"expires", b"Mon, 26 Jul 1997 05:00:00 GMT"),
        (b"access-control-allow-origin", b"*"),
        (b"connection", b"close"),
    ]
    if info.url:
        headers.append((b"icy-url", _header_value(info.url)))
    if metaint:
        headers.append((b"icy-metaint", str(metaint).encode()))
    return headers


def _response_head(mount: IcecastMount, metaint: int, http_version: str) -> bytes:
    # The body runs until the connection closes, as Icecast's does: no chunking, for old players.
    status = b"HTTP/1.0 200 OK" if http_version == "1.0" else b"HTTP/1.1 200 OK"
    lines = [status, b"server: OnAir"]
    lines += [name + b": " + value for name, value in _stream_headers(mount, metaint)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _prepare_socket(transport: _Transport, send_buffer: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _server_transport(send: Send, receive: Receive) -> _Transport | None:
    """The connection's transport when the server is uvicorn's HTTP/1, else None.

    uvicorn's `send` and `receive` are methods of its per-request cycle, which holds the
    transport (middleware usually wraps `send` but passes `receive` through). Writing to the
    transport directly saves a coroutine step, a message dict and a flow-control check per write
    per listener, and lets a stalled listener be aborted; anything else falls back to ASGI.
    """
    needed = ("write", "close", "abort", "is_closing", "get_write_buffer_size", "get_extra_info")
    for method in (send, receive):
        cycle = getattr(method, "__self__", None)
        if cycle is None or not type(cycle).__module__.startswith("uvicorn.protocols.http."):
            continue
        transport = getattr(cycle, "transport", None)
        if transport is not None and all(hasattr(transport, name) for name in needed):
            return transport  # type: ignore[no-any-return]
    return None


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _json_error(send: Send, status: int, code: str, message: str) -> None:
    response = JSONResponse(error_body(code, message), status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def not_live_message(show_id: int) -> str:
    return f"show {show_id} is not live"


class _StreamEndpoint:
    """The ASGI app for one format's stream; routes pass `show_id` in `path_params`."""

    def __init__(self, lookup: FeedLookup, fmt: StreamFormat, settings: StreamSettings) -> None:
        self._lookup = lookup
        self._format: StreamFormat = fmt
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _json_error(send, 405, "method_not_allowed", "streams answer GET and HEAD")
            return
        show_id = int(scope["path_params"]["show_id"])
        feed = self._lookup(show_id)
        if feed is None or feed.closed:
            await _json_error(send, 404, "not_live", not_live_message(show_id))
            return
        icy = any(n == b"icy-metadata" and v.strip() == b"1" for n, v in scope["headers"])
        metaint = self._settings.metaint if icy else 0
        try:
            mount = icecast_mount(feed, self._format, self._settings)
        except RuntimeError:  # the show ended a moment ago
            await _json_error(send, 404, "not_live", not_live_message(show_id))
            return
        if method == "HEAD":
            headers = _stream_headers(mount, metaint)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        agent = dict(scope["headers"]).get(b"user-agent", b"").decode("latin-1")
        transport = _server_transport(send, receive) if self._settings.transport_handoff else None
        if transport is not None:
            await self._over_transport(scope, receive, mount, metaint, transport, agent)
        else:
            await self._over_asgi(receive, send, mount, metaint, agent)

    async def _over_transport(
        self,
        scope: Scope,
        receive: Receive,
        mount: IcecastMount,
        metaint: int,
        transport: _Transport,
        user_agent: str,
    ) -> None:
        _prepare_socket(transport, self._settings.send_buffer_bytes)
        transport.write(_response_head(mount, metaint, scope.get("http_version", "1.1")))
        listener = _TransportListener(mount, metaint, transport)
        try:
            mount.join(listener, user_agent)
        except RuntimeError:  # the show ended while we answered
            transport.close()
        try:
            # Drops, the show's end and the client leaving all end in the connection closing.
            await _until_disconnect(receive)
        finally:
            mount.leave(listener)

    async def _over_asgi(
        self, receive: Receive, send: Send, mount: IcecastMount, metaint: int, user_agent: str
    ) -> None:
        headers = _stream_headers(mount, metaint)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        listener = _AsgiListener(mount, metaint)
        try:
            mount.join(listener, user_agent)
        except RuntimeError:  # the show ended while we answered
            await send({"type": "http.response.body", "body": b""})
            return

        def gone(_: object) -> None:
            listener.abort()

        # Servers tell of a client leaving only through `receive`, so it is watched alongside.
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(gone)
        try:
            await listener.run(send)
        finally:
            watcher.remove_done_callback(gone)
            watcher.cancel()
            mount.leave(listener)


def stream_routes(
    lookup_feed: FeedLookup,
    *,
    settings: StreamSettings | None = None,
    hls_settings: HlsSettings | None = None,
) -> Router:
    """Everything under `/listen`: mount it with `app.mount("/listen", stream_routes(lookup))`.

    `/{id}.mp3`, `/{id}.aac` (Icecast-style), `/{id}.m3u8` and `/{id}/hls/{seq}.ts` (HLS),
    `/{id}.m3u` and `/{id}.pls` (playlists for VLC and the like). `lookup_feed` maps a show id to
    its feed, or None when the show is not live (answered 404 `not_live`).
    """
    stream_settings = settings or StreamSettings()
    routes: list[BaseRoute] = [
        Route(
            "/{show_id:int}.mp3",
            _StreamEndpoint(lookup_feed, "mp3", stream_settings),  # answers 405 itself, in JSON
        ),
        Route(
            "/{show_id:int}.aac",
            _StreamEndpoint(lookup_feed, "aac", stream_settings),
        ),
        *hls_routes(lookup_feed, hls_settings),
        *playlist_routes(lookup_feed),
    ]
    return Router(routes=routes)


class StreamFront:
    """Serves `{prefix}/{id}.mp3|.aac` ahead of `app`; everything else goes to `app`.

    Wrap the whole application with it (`uvicorn.run(StreamFront(app, lookup))`): a stream is
    a response that never ends, and middleware that inspects responses (Starlette's
    `BaseHTTPMiddleware`, which `@app.middleware("http")` installs) would otherwise run for
    every write of every listener, several times what the write itself costs.
    """

    def __init__(
        self,
        app: ASGIApp,
        lookup_feed: FeedLookup,
        *,
        settings: StreamSettings | None = None,
        prefix: str = "/listen",
    ) -> None:
        self.app = app
        stream_settings = settings or StreamSettings()
        self._endpoints = {
            fmt: _StreamEndpoint(lookup_feed, fmt, stream_settings) for fmt in ("mp3", "aac")
        }
        self._path = re.compile(re.escape(prefix) + r"/([0-9]{1,10})\.(mp3|aac)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = self._path.fullmatch(scope["path"])
            if match is not None:
                endpoint = self._endpoints[match[2]]
                scope = {**scope, "path_params": {"show_id": int(match[1])}}
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- a dedicated streaming server


class _StreamProtocol(asyncio.Protocol):
    """One connection to the dedicated server: read the request head, then stream."""

    def __init__(self, lookup: FeedLookup, settings: StreamSettings) -> None:
        self._lookup = lookup
        self._settings = settings
        self._head = bytearray()
        self._transport: _Transport | None = None
        self._listener: _TransportListener | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes, so no isinstance here.
        self._transport = cast(_Transport, transport)
        # A client that never finishes its request head is not a listener.
        self._timeout = asyncio.get_running_loop().call_later(10, self._transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._listener is not None or self._transport is None:
            return  # players send nothing after the request; ignore whatever comes
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_REQUEST_HEAD:
                self._refuse(431, "too_large", "request head too large")
            return
        if self._timeout is not None:
            self._timeout.cancel()
        self._answer(bytes(self._head[:end]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if self._listener is not None:
            self._listener.mount.leave(self._listener)

    def _answer(self, head: bytes) -> None:
        transport = self._transport
        assert transport is not None
        request_line, _, header_block = head.partition(b"\r\n")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._refuse(400, "bad_request", "not an HTTP/1 request")
            return
        method, target, version = parts
        if method not in (b"GET", b"HEAD"):
            self._refuse(405, "method_not_allowed", "streams answer GET and HEAD")
            return
        match = re.fullmatch(rb"(?:/listen)?/([0-9]{1,10})\.(mp3|aac)(?:\?.*)?", target)
        if match is None:
            self._refuse(404, "not_found", "no such stream")
            return
        show_id = int(match[1])
        fmt: StreamFormat = "mp3" if match[2] == b"mp3" else "aac"
        feed = self._lookup(show_id)
        if feed is None or feed.closed:
            self._refuse(404, "not_live", not_live_message(show_id))
            return
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in header_block.split(b"\r\n"))
        }
        icy = fields.get(b"icy-metadata") == b"1"
        metaint = self._settings.metaint if icy else 0
        try:
            mount = icecast_mount(feed, fmt, self._settings)
        except RuntimeError:  # the show ended a moment ago
            self._refuse(404, "not_live", not_live_message(show_id))
            return
        _prepare_socket(transport, self._settings.send_buffer_bytes)
        transport.write(_response_head(mount, metaint, version[5:].decode()))
        if method == b"HEAD":
            transport.close()
            return
        listener = _TransportListener(mount, metaint, transport)
        try:
            mount.join(listener, fields.get(b"user-agent", b"").decode("latin-1"))
        except RuntimeError:
            transport.close()
            return
        self._listener = listener

    def _refuse(self, status: int, code: str, message: str) -> None:
        transport = self._transport
        assert transport is not None
        response = JSONResponse(error_body(code, message), status_code=status)
        reason = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status, "Request Header Fields Too Large"
        )
        head = [f"HTTP/1.1 {status} {reason}".encode()]
        head += [name + b": " + value for name, value in response.raw_headers]
        head.append(b"connection: close")
        transport.write(b"\r\n".join(head) + b"\r\n\r\n" + response.body)
        transport.close()


async def serve_streams(
    lookup_feed: FeedLookup,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    settings: StreamSettings | None = None,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """A lean server for `/listen/{id}.mp3|aac` alone, on its own port, beside the app.

    For nodes that serve many stream listeners: no ASGI in the way at all. It shares the mounts
    (and so the encoders) with the app's `/listen` routes on the same loop.
    """
    stream_settings = settings or StreamSettings()
    loop = asyncio.get_running_loop()

    def protocol() -> _StreamProtocol:
        return _StreamProtocol(lookup_feed, stream_settings)

    if sock is not None:
        return await loop.create_server(protocol, sock=sock)
    return await loop.create_server(protocol, host, port, reuse_address=True)
