"""The Icecast 2 source protocol, as DJ software speaks it: request heads, Basic auth, mounts,
chunked bodies and the answers a source client understands.

Only what sources send is parsed, and strictly bounded: one request head of at most
``MAX_HEAD`` bytes and ``MAX_HEADERS`` fields, then either a raw stream (``SOURCE``, or ``PUT``
without a length, until the socket closes), a ``Content-Length`` body or a chunked one. Anything
else is a ``ProtocolError`` carrying the status to refuse it with. No I/O here: the ingest server
(`onair.media.ingest`) feeds bytes in and writes the answers out.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "MAX_HEAD",
    "ChunkedBody",
    "ProtocolError",
    "SourceRequest",
    "parse_head",
    "parse_mount",
    "response",
]

MAX_HEAD: Final = 8192
MAX_HEADERS: Final = 64
MAX_CHUNK_LINE: Final = 1024
"""A chunk-size line (hex digits and extensions) longer than this is not a real client's."""

METHODS: Final = ("SOURCE", "PUT", "GET")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MOUNT = re.compile(r"/(?:show/)?([0-9]{1,10})(?:\.(?:mp3|ogg|opus|oga|aac))?/?")
_REASONS: Final = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProtocolError(Exception):
    """A request to refuse with ``status``; ``message`` is said to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SourceRequest:
    method: str
    target: str
    version: str
    """"1.0" or "1.1"."""
    headers: dict[str, str] = field(default_factory=dict)
    """Field names lower-cased; values as sent (Latin-1), repeated fields joined by ", "."""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The query string's fields, UTF-8 (Latin-1 when it is not), the last of each wins."""
        raw = urlsplit(self.target).query
        try:
            return dict(parse_qsl(raw, encoding="utf-8", errors="strict"))
        except UnicodeDecodeError:
            return dict(parse_qsl(raw, encoding="latin-1"))

    @property
    def expects_continue(self) -> bool:
        return self.headers.get("expect", "").strip().lower() == "100-continue"

    @property
    def chunked(self) -> bool:
        codings = [c.strip().lower() for c in self.headers.get("transfer-encoding", "").split(",")]
        return "chunked" in codings

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None:
            return None
        if not value.strip().isdigit() or len(value.strip()) > 18:
            raise ProtocolError(400, "bad Content-Length")
        return int(value)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def credentials(self) -> tuple[str, str] | None:
        """The Basic auth (user, password), or None when there is none or it is malformed."""
        scheme, _, encoded = self.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        if not colon:
            return None
        return user, password

    def ice(self, name: str) -> str:
        """An ``ice-*`` header (``ice("name")``), falling back to its older ``icy-*`` twin."""
        return self.headers.get(f"ice-{name}") or self.headers.get(f"icy-{name}", "")


def parse_head(head: bytes) -> SourceRequest:
    """Parses a request head (without its final blank line)."""
    if len(head) > MAX_HEAD:
        raise ProtocolError(431, "request head too large")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise ProtocolError(400, "not an HTTP request")
    method, target, version = parts
    if version not in (b"HTTP/1.0", b"HTTP/1.1") or not target.startswith(b"/"):
        raise ProtocolError(400, "not an HTTP/1 request")
    if len(lines) - 1 > MAX_HEADERS:
        raise ProtocolError(431, "too many header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise ProtocolError(400, "malformed header field")
        key = name.decode("ascii").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return SourceRequest(
        method=method.decode("ascii").upper(),
        target=target.decode("latin-1"),
        version=version[5:].decode("ascii"),
        headers=headers,
    )


def parse_mount(path: str) -> int | None:
    """The show id a mount names: ``/7``, ``/7.mp3``, ``/show/7`` (also .ogg, .opus, .aac)."""
    match = _MOUNT.fullmatch(path)
    return int(match[1]) if match else None


class ChunkedBody:
    """Undoes ``Transfer-Encoding: chunked`` incrementally: bytes in, payload out."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._left = 0  # payload bytes still due in the current chunk
        self._state = "size"  # size | data | data-end | trailer | done

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view = memoryview(data)
        at = 0
        while at < len(view) and self._state != "done":
            if self._state == "data":
                n = min(self._left, len(view) - at)
                out += view[at : at + n]
                at += n
                self._left -= n
                if self._left == 0:
                    self._state = "data-end"
                continue
            end = data.find(b"\n", at)
            if end < 0:
                self._take_line(view[at:])
                break
            self._take_line(view[at:end])
            at = end + 1
            self._line_done(bytes(self._line).rstrip(b"\r"))
            self._line.clear()
        return bytes(out)

    def _take_line(self, part: memoryview) -> None:
        self._line += part
        if len(self._line) > MAX_CHUNK_LINE:
            raise ProtocolError(400, "chunk line too long")

    def _line_done(self, line: bytes) -> None:
        if self._state == "data-end":
            if line:
                raise ProtocolError(400, "chunk not followed by CRLF")
            self._state = "size"
        elif self._state == "size":
            size = line.split(b";", 1)[0].strip()
            if not size or len(size) > 8 or not all(c in b"0123456789abcdefABCDEF" for c in size):
                raise ProtocolError(400, "bad chunk size")
            self._left = int(size, 16)
            self._state = "data" if self._left else "trailer"
        elif self._state == "trailer" and not line:
            self._state = "done"


def response(
    status: int,
    body: str = "",
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "text/plain; charset=utf-8",
    version: str = "1.0",
) -> bytes:
    """A complete answer: status line, fields, and ``body`` with its length (none for 100)."""
    lines = [f"HTTP/{version} {status} {_REASONS.get(status, 'Error')}"]
    if status != 100:
        data = body.encode()
        lines += ["Server: OnAir", f"Content-Type: {content_type}", f"Content-Length: {len(data)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
