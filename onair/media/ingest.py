"""The source ingest: DJ software (Mixxx, BUTT, Liquidsoap, ffmpeg) broadcasts into a live show.

A small asyncio TCP server on its own port, as Icecast has: a ``SOURCE`` body has no length
and runs until the socket closes, which no ASGI server carries. It answers

- ``PUT /{show_id}`` and ``SOURCE /{show_id}`` (also ``/{show_id}.mp3``, ``/show/{show_id}``)
  with Basic auth ``source:<the show's key>``: ``Expect: 100-continue`` is honoured, a chunked
  body is undone, and the stream becomes the show's music (`LiveShow.open_source`);
- ``GET /admin/metadata?mode=updinfo&mount=/{show_id}&song=...`` (same auth): the title;
- ``GET /admin/!POKE``: libshout's probe of what the server speaks.

With several nodes, a source (or a title update) for a show whose studio runs on another node
is checked here, then forwarded to that node's source ingest: the request head as it came,
then the bytes both ways until either side hangs up (`route` says where).

A wrong or missing key is 401 whether or not the show exists; a show that is not live (on no
node) is 403; a show whose node cannot be reached is 503; a show already fed by a source is
409 (Icecast's busy mount). A source that sends nothing for ``stall_s`` is hung up on; the
deck has by then segued into the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol
from xml.sax.saxutils import escape

from onair.media.icesource import (
    MAX_HEAD,
    ChunkedBody,
    ProtocolError,
    SourceRequest,
    parse_head,
    parse_mount,
    response,
)
from onair.media.source_keys import SOURCE_USER
from onair.studio.livesource import FORMATS, LiveSource, SourceBusy

__all__ = ["IngestSettings", "SourceIngest", "SourceTarget", "serve_ingest"]

log = logging.getLogger("onair.media.ingest")

_REALM: Final = 'Basic realm="OnAir source"'
_ALLOW: Final = {"Allow": "GET, PUT, SOURCE", "Accept-Encoding": "chunked"}
_READ: Final = 16 * 1024


class SourceTarget(Protocol):
    """A live show as the ingest sees it (`onair.live.station.LiveShow`)."""

    def open_source(self, name: str, container: str | None, title: str = "") -> LiveSource: ...


TargetLookup = Callable[[int], SourceTarget | None]
KeyCheck = Callable[[int, str], Awaitable[bool]]
SourceRoute = Callable[[int], Awaitable[tuple[str, int] | None]]
"""The (host, port) of the source ingest of the node that runs a show's studio, when it is
another node."""


@dataclass(frozen=True)
class IngestSettings:
    head_timeout_s: float = 10.0
    """A client that has not sent its whole request head by then is hung up on (slowloris)."""
    stall_s: float = 2.0
    """A source that sends nothing for this long has stopped."""
    max_connections: int = 64


class SourceIngest:
    """The connections of one ingest server; `serve_ingest` runs it."""

    def __init__(
        self,
        lookup: TargetLookup,
        check_key: KeyCheck,
        settings: IngestSettings | None = None,
        *,
        route: SourceRoute | None = None,
    ) -> None:
        self._lookup = lookup
        self._check_key = check_key
        self._route = route
        self.settings = settings or IngestSettings()
        self._sources: dict[int, LiveSource] = {}
        self._connections = 0
        self._writers: set[asyncio.StreamWriter] = set()

    def close(self) -> None:
        """Hangs up on every connection (the server is shutting down)."""
        for writer in list(self._writers):
            writer.transport.abort()

    def source(self, show_id: int) -> LiveSource | None:
        """The source feeding `show_id` through this server, if any."""
        source = self._sources.get(show_id)
        return source if source is not None and not source.off_air else None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        self._writers.add(writer)
        try:
            if self._connections > self.settings.max_connections:
                writer.write(response(503, "too many connections"))
                return
            await self._serve(reader, writer)
        except ProtocolError as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(response(exc.status, exc.message, headers=_error_headers(exc.status)))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("source ingest connection failed")
            with contextlib.suppress(ConnectionError):
                writer.write(response(500, "internal error"))
        finally:
            self._connections -= 1
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await self._read_head(reader)
        if head is None:
            return
        request = parse_head(head[:-4])
        if request.method == "GET" and request.path == "/admin/!POKE":
            writer.write(response(200, "OnAir source ingest", headers=_ALLOW))
            return
        if request.method == "GET" and request.path == "/admin/metadata":
            show_id = parse_mount(request.query.get("mount", ""))
            if show_id is not None and self.source(show_id) is None:
                await self._authorize(request, show_id)
                if await self._relay(head, show_id, reader, writer):
                    return
            writer.write(await self._metadata(request))
            return
        if request.method == "GET":
            raise ProtocolError(404, "this port takes sources; listen on the web server's port")
        if request.method not in ("PUT", "SOURCE"):
            raise ProtocolError(405, "sources use PUT or SOURCE")
        show_id = parse_mount(request.path)
        if show_id is None:
            raise ProtocolError(404, "mount must be /{show id}, e.g. /7 or /7.mp3")
        await self._authorize(request, show_id)
        if self._lookup(show_id) is None and await self._relay(head, show_id, reader, writer):
            return
        await self._stream(request, show_id, reader, writer)

    async def _relay(
        self,
        head: bytes,
        show_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Forwards the connection to the node that runs the show's studio; False when no
        other node does (this node answers)."""
        address = await self._route(show_id) if self._route is not None else None
        if address is None:
            return False
        host, port = address
        try:
            async with asyncio.timeout(self.settings.head_timeout_s):
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            log.warning("source for show=%s: its node %s:%s cannot be reached", show_id, host, port)
            raise ProtocolError(
                503, "the show's studio node cannot be reached; try again"
            ) from None
        self._writers.add(up_writer)
        log.info("source forwarded show=%s to=%s:%s", show_id, host, port)
        try:
            up_writer.write(head)
            copies = {
                asyncio.ensure_future(_copy(reader, up_writer)),
                asyncio.ensure_future(_copy(up_reader, writer)),
            }
            _, pending = await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:  # either side hung up: so does the other
                task.cancel()
            for task in copies:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()
        return True

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            async with asyncio.timeout(self.settings.head_timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise ProtocolError(408, "request head not received in time") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError(431, "request head too large") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise ProtocolError(400, "incomplete request head") from None
            return None
        return head

    async def _authorize(self, request: SourceRequest, show_id: int) -> None:
        credentials = request.credentials()
        if credentials is None:
            raise ProtocolError(401, "authentication required (user source, the show's key)")
        user, key = credentials
        valid = await self._check_key(show_id, key)
        if user != SOURCE_USER or not valid:
            log.info("source refused show=%s: wrong user or key", show_id)
            raise ProtocolError(401, "wrong user or key")

    async def _metadata(self, request: SourceRequest) -> bytes:
        query = request.query
        if query.get("mode") != "updinfo":
            raise ProtocolError(400, "only mode=updinfo is supported")
        show_id = parse_mount(query.get("mount", ""))
        if show_id is None:
            raise ProtocolError(400, "mount=/{show id} is required")
        await self._authorize(request, show_id)
        song = query.get("song") or " - ".join(
            part for part in (query.get("artist", ""), query.get("title", "")) if part
        )
        source = self.source(show_id)
        if source is None:
            raise ProtocolError(400, "no source on that mount")
        source.set_title(_clean_title(song))
        log.info("source title show=%s title=%r", show_id, song)
        body = (
            '<?xml version="1.0"?>\n<iceresponse><message>'
            f"{escape('Metadata update successful')}</message><return>1</return></iceresponse>\n"
        )
        return response(200, body, content_type="text/xml")

    async def _stream(
        self,
        request: SourceRequest,
        show_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        target = self._lookup(show_id)
        if target is None:
            raise ProtocolError(403, f"show {show_id} is not live: go live from the console first")
        if self.source(show_id) is not None:
            raise ProtocolError(409, f"a source is already broadcasting into show {show_id}")
        kind = request.content_type
        if kind and kind not in FORMATS:
            raise ProtocolError(415, f"{kind} is not a format OnAir decodes (MP3, Ogg, AAC)")
        length = request.content_length
        chunked = ChunkedBody() if request.method == "PUT" and request.chunked else None
        name = request.ice("name") or request.headers.get("user-agent", "") or "source"
        try:
            source = target.open_source(name[:200], FORMATS.get(kind, "mp3"))
        except SourceBusy as exc:
            raise ProtocolError(409, str(exc)) from None
        self._sources[show_id] = source
        log.info(
            "source connected show=%s method=%s type=%s name=%r genre=%r",
            show_id,
            request.method,
            kind or "-",
            name,
            request.ice("genre"),
        )
        reason = "disconnected"
        try:
            if request.expects_continue:
                writer.write(response(100, version=request.version))
            writer.write(response(200, version=request.version))
            reason = await self._pump(reader, source, chunked, length)
        finally:
            source.end(reason)
            if self._sources.get(show_id) is source:
                del self._sources[show_id]
            log.info("source gone show=%s: %s", show_id, reason)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        source: LiveSource,
        chunked: ChunkedBody | None,
        length: int | None,
    ) -> str:
        """Moves the body into the source until it ends; returns why it ended."""
        left = length
        while True:
            if source.off_air:
                return "taken off air"
            try:
                async with asyncio.timeout(self.settings.stall_s):
                    data = await reader.read(_READ if left is None else min(_READ, left))
            except TimeoutError:
                return "no data"
            if not data:
                return "disconnected"
            if left is not None:
                left -= len(data)
            if chunked is not None:
                data = chunked.feed(data)
            if data and not source.feed(data):
                return source.end_reason or "too far ahead of real time"
            if (chunked is not None and chunked.done) or left == 0:
                return "ended"


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Moves bytes as they come until the reader ends (or the writer's peer is gone)."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(_READ):
            writer.write(data)
            await writer.drain()


def _error_headers(status: int) -> dict[str, str]:
    if status == 401:
        return {"WWW-Authenticate": _REALM}
    if status == 405:
        return {"Allow": _ALLOW["Allow"]}
    return {}


def _clean_title(title: str) -> str:
    return "".join(c for c in title if c >= " " and c != "\x7f").strip()[:255]


async def serve_ingest(
    ingest: SourceIngest, host: str = "127.0.0.1", port: int = 8010
) -> asyncio.Server:
    """Starts listening; close the returned server to stop (sources on air are hung up on)."""
    return await asyncio.start_server(ingest.handle, host, port, limit=MAX_HEAD, reuse_address=True)
