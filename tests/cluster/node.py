"""One OnAir node as `onair serve` runs it (`create_asgi`), in a process of its own so a test
can kill it: `python -m tests.cluster.node PORT`, configured by ONAIR_* variables."""

from __future__ import annotations

import sys

import uvicorn

from onair.app import create_asgi
from onair.settings import Settings


def main() -> None:
    port = int(sys.argv[1])
    settings = Settings(port=port)
    uvicorn.run(
        create_asgi(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="asyncio",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
