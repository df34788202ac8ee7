"""Requests for a show's media and studio that reach a node other than the studio's owner.

They are proxied to the owner, streamed both ways, never redirected:

- Stream players (VLC, car radios, smart speakers, Icecast relays) follow redirects badly or
  not at all, and those that do reconnect to the URL they were sent to: a redirected listener
  would keep calling a dead node after a failover. Proxied, the stream URL works through any
  node, and a player that reconnects after its owner died reaches the new owner.
- The ICY metadata is in the stream's bytes (every `icy-metaint` bytes) and its header in the
  response's: both pass through untouched, as raw bytes and headers.
- HLS playlists and segments go the same way, so a player's base URL never moves to another
  node (hls.js resolves segments against where the playlist came from).
- WHEP offers, the studio's controls and the stage need the studio object; a redirect to
  another origin would drop the session cookie and fail the cross-site guard, and node URLs
  (ONAIR_NODE_URL) are often internal addresses a browser cannot reach.

While the show is between nodes (its owner died and its lease has not lapsed, or the next node
is starting its studio) a GET waits up to `FAILOVER_WAIT_S` for the new owner rather than
answer a player 404 or 503, so most players do not even notice the failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

import httpx
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onair.cluster.node import ClusterNode, OwnerUnreachable
from onair.errors import error_body

log = logging.getLogger("onair.cluster")

FAILOVER_WAIT_S = 9.0
FORWARDED = b"x-onair-forwarded"
"""Set on a proxied request: the owner answers it itself, so a request never goes round."""
MAX_BODY = 1024 * 1024
"""Proxied requests are offers and JSON, far smaller."""

_SHOW_PATH = re.compile(
    r"/listen/(?P<stream>[0-9]{1,10})(?:\.mp3|\.aac|\.m3u8|/hls/[0-9]{1,12}\.ts)"
    r"|/api/v1/shows/(?P<studio>[0-9]{1,10})/(?:whep|studio|stage|source|restream)(?:/.*)?"
)
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
    b"host",
}


def show_of(path: str) -> int | None:
    """The show a path needs the studio of, or None."""
    match = _SHOW_PATH.fullmatch(path)
    if match is None:
        return None
    return int(match["stream"] or match["studio"])


class OwnerProxy:
    """ASGI: sends a show's media and studio requests to the node that runs its studio."""

    def __init__(self, app: ASGIApp, node: ClusterNode) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        show_id = show_of(scope["path"]) if scope["type"] == "http" else None
        if show_id is None:
            await self.app(scope, receive, send)
            return
        if any(name == FORWARDED for name, _ in scope["headers"]):
            await self.node.started(show_id, FAILOVER_WAIT_S)  # sent here as it took the show
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _refuse(send, 413, "too_large", f"request bodies are limited to {MAX_BODY}")
            return
        replay = _replaying(body, receive)
        patient = scope["method"] in ("GET", "HEAD")
        deadline = time.monotonic() + FAILOVER_WAIT_S
        while True:
            try:
                url = await self.node.route(show_id)
                if url is None:
                    await self.app(scope, replay, send)
                    return
                await self._forward(url, scope, body, receive, send)
                return
            except (OwnerUnreachable, httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if not patient or time.monotonic() >= deadline:
                    log.warning("show unreachable show=%s: %s", show_id, exc)
                    await _refuse(
                        send, 503, "owner_unreachable", "the show is moving between nodes"
                    )
                    return
                await asyncio.sleep(0.25)

    async def _forward(
        self, base: str, scope: Scope, body: bytes, receive: Receive, send: Send
    ) -> None:
        target = base + scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        if host is not None:  # the owner judges the request as the node it came to would
            headers.append((b"host", host))
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        headers.append((FORWARDED, self.node.node_id.encode()))
        request = self.node.http.build_request(
            scope["method"], target, headers=headers, content=body or None
        )
        response = await self.node.http.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v)
                        for k, v in response.headers.raw
                        if k.lower() not in _HOP_BY_HOP or k.lower() == b"content-length"
                    ],
                }
            )
            pump = asyncio.ensure_future(_pump(response, send))
            gone = asyncio.ensure_future(_until_disconnect(receive))
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _pump(response: httpx.Response, send: Send) -> None:
    """Copies the owner's bytes as they come; its node dying ends the response (the player
    reconnects, and reaches the new owner)."""
    with contextlib.suppress(httpx.ReadError, httpx.RemoteProtocolError):
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read once, then the connection's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    response = JSONResponse(error_body(code, message), status_code=status)
    if status == 503:
        response.headers["retry-after"] = "2"
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
