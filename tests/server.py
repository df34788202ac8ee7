"""A real uvicorn serving an app on 127.0.0.1 in a background thread, for tests over the wire."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from onair.media.icecast import StreamFront

T = TypeVar("T")


@dataclass
class RunningServer:
    url: str
    port: int
    app: Any
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Runs `coro` on the server's event loop (app state is not thread-safe)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def serve(app: Any, *, websockets: bool = True) -> Iterator[RunningServer]:
    """Serves `app`; OnAir's own app is served as `onair serve` runs it, behind StreamFront."""
    onair = getattr(getattr(app, "state", None), "onair", None)
    asgi = StreamFront(app, onair.stations.feed) if isinstance(app, FastAPI) and onair else app
    # Bound before uvicorn starts, so the port is free and known.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        asgi,
        log_level="warning",
        loop="asyncio",
        ws="websockets-sansio" if websockets else "none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        loops.append(loop)
        loop.run_until_complete(server.serve(sockets=[sock]))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", port, app, server, loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
