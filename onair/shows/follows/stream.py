"""A user's notifications as server-sent events (text/event-stream), the page header's bell.

The response is pure ASGI, like the Icecast streams: it sends what its subscription hands it,
a comment every `heartbeat_s` so proxies keep the connection, and ends when the client leaves,
the user is suspended or banned (a `closed` event first), the stream falls too far behind, or
the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from onair.shows.follows.notifications import NotificationHub, ServerCycle, Subscription, UserEvent

CYCLE_KEY = "onair.http_cycle"
RETRY_MS = 5000
"""How long a browser waits before reconnecting a stream that ended."""
# Reasons that the page is told of before the stream ends; the others end it silently.
_TOLD = {"suspended", "banned", "server_shutdown", "too_slow"}


class HttpCycle:
    """Pure ASGI: puts the server's request cycle in the scope, when it exposes `keep_alive`
    (uvicorn's), so a stream sees the server begin a graceful shutdown.

    uvicorn hands the app its cycle's own bound `receive` (Starlette's error middleware wraps
    `send`, not `receive`); any other server simply gets no cycle, and its streams end when
    the server cancels them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            cycle = getattr(receive, "__self__", None)
            if isinstance(getattr(cycle, "keep_alive", None), bool):
                scope[CYCLE_KEY] = cycle
        await self.app(scope, receive, send)


def server_cycle(scope: Scope) -> ServerCycle | None:
    cycle: ServerCycle | None = scope.get(CYCLE_KEY)
    return cycle


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        hub: NotificationHub,
        subscription: Subscription,
        first: list[UserEvent],
        *,
        heartbeat_s: float,
    ) -> None:
        super().__init__(
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            media_type="text/event-stream; charset=utf-8",
        )
        # No length: the body goes on until the stream ends (chunked).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._hub = hub
        self._sub = subscription
        self._first = first
        self._heartbeat_s = heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self._sub
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(lambda _: sub.close("gone"))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            opening = f"retry: {RETRY_MS}\n\n".encode() + b"".join(e.sse for e in self._first)
            await _body(send, opening)
            while sub.closed is None:
                event = await sub.next(self._heartbeat_s)
                if event is not None:
                    await _body(send, event.sse)
                elif sub.closed is None:
                    await _body(send, b": heartbeat\n\n")
            if sub.closed in _TOLD:
                await _body(send, UserEvent("closed", {"reason": sub.closed}).sse)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while we wrote to it
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._hub.unsubscribe(sub)


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
