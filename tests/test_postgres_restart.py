"""PostgreSQL restarts during a live show: the show keeps playing and the room goes on.

The node runs on a PostgreSQL server of the test's own (initdb in a temporary folder, a free
port), so restarting it disturbs no other test. A listener of the show's MP3 hears 440 Hz
without a gap through the restart, and chat sent after it is stored and read back, with the
message sent before it still there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.live import RATE, levels, serving_concert_a
from tests.media import decode

pytestmark = [pytest.mark.media, pytest.mark.postgres]


def _pg_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnPostgres:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args]
        # Not captured: the server it starts would hold the pipes open (its output is the log).
        subprocess.run(
            _as_postgres(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.data / "log"), "start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "-l", str(self.data / "log"), "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    pg_bin = _pg_bin()
    if pg_bin is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL's server programs (Debian package postgresql) are not installed")
    root = Path(tempfile.mkdtemp(prefix="onair-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    server = OwnPostgres(pg_bin, data, _free_port())
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


async def _go_live(http: httpx.AsyncClient) -> int:
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": "steady", "email": "s@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    show = (await http.post("/api/v1/shows", json={"title": "Steady FM", "genre": "Test"})).json()
    found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()
    track = found["tracks"][0]["id"]
    assert (
        await http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": track})
    ).is_success
    assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return int(show["id"])


def _listen(url: str, seconds: float, into: bytearray) -> None:
    with httpx.Client(timeout=15) as http, http.stream("GET", url) as r:
        assert r.status_code == 200
        deadline = time.monotonic() + seconds
        for chunk in r.iter_raw():
            into += chunk
            if time.monotonic() > deadline:
                return


def test_the_show_plays_on_and_chat_resumes_when_postgresql_restarts(
    tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    with serving_concert_a(tmp_path, database_url=own_postgres.url) as server:

        async def scenario() -> list[str]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                show_id = await _go_live(http)
                audio = bytearray()
                listener = threading.Thread(
                    target=_listen, args=(f"{server.url}/listen/{show_id}.mp3", 12.0, audio)
                )
                listener.start()
                chat = f"/api/v1/shows/{show_id}/chat"
                assert (await http.post(chat, json={"text": "before"})).status_code == 201
                await asyncio.sleep(3)
                await asyncio.to_thread(own_postgres.restart)
                # The pool's connections died with the server: the next request gets a new one.
                sent = await http.post(chat, json={"text": "after"})
                assert sent.status_code == 201, sent.text
                await asyncio.to_thread(listener.join, 30)
                history = (await http.get(chat)).json()
                self_check = decode(bytes(audio), "mp3")
                # The program after the listener's first second: 440 Hz all through, no gap.
                heard = levels(self_check[RATE:], 440.0, hop=0.1)
                assert len(heard) > 80, "the stream stopped"
                assert float(np.min(heard)) > -30.0, f"a gap: {np.round(heard, 1).tolist()}"
                messages = history["messages"] if isinstance(history, dict) else history
                return [m["text"] for m in messages]

        texts = asyncio.run(scenario())
    assert texts[-2:] == ["before", "after"]
