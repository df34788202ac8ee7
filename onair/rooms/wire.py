"""Room events written straight onto the connections: one WebSocket frame, encoded once.

A room sends the same event to thousands of sockets. Through the ASGI `send` each copy would be
framed (and, with permessage-deflate, compressed) again by the server and need a task to wake,
which costs more than everything else in chat. A server-to-client frame is not masked, so the
bytes of a text frame are the same for every client: the room builds them once and writes them
to each connection's transport. Frames without RSV1 are uncompressed messages, which
permessage-deflate allows (RFC 7692, section 6), so this holds whatever was negotiated.

`RoomWire` finds the transport: uvicorn's WebSocket protocols (websockets, websockets-sansio,
wsproto) pass their own bound `send` to the app and keep the connection in `.transport`. Any
other server simply gets no wire, and the room falls back to the ASGI `send`.
"""

from __future__ import annotations

import struct
from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp, Receive, Scope, Send

SCOPE_KEY = "onair.wire"


@runtime_checkable
class Wire(Protocol):
    """What the room needs of a connection's transport (asyncio's and uvloop's have it)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked, uncompressed WebSocket text frame (RFC 6455, section 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class RoomWire:
    """Pure ASGI: puts a WebSocket connection's transport in its scope, when there is one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if isinstance(transport, Wire):
                scope[SCOPE_KEY] = transport
        await self.app(scope, receive, send)
