"""Helpers for the cluster tests: real nodes (`onair serve`'s app in subprocesses) on one
PostgreSQL database and one Redis, with a catalog of tones and a chirp."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import redis

from tests.conftest import _service_missing
from tests.live import RATE, seed_songs, write_flac, write_song

ROOT = Path(__file__).resolve().parents[2]
CHIRP_START_HZ = 300.0
CHIRP_HZ_PER_S = 10.0
"""The chirp's frequency rises this much each second: what is heard says where in it we are."""


def write_chirp(path: Path, seconds: float, level: float = 0.3) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    write_flac(path, level * np.sin(2 * np.pi * (CHIRP_START_HZ * t + CHIRP_HZ_PER_S * t * t / 2)))


def chirp_position(frequency: float) -> float:
    """Seconds into the chirp at which it sounds `frequency`."""
    return (frequency - CHIRP_START_HZ) / CHIRP_HZ_PER_S


def require_redis() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _service_missing(f"Redis ({exc.__class__.__name__})")
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    node_id: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    source_port: int = 0
    """Its source ingest's port (0: none, unless the world runs sources)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)


@dataclass
class World:
    """Nodes sharing a database, a Redis key prefix and the recordings' folder."""

    root: Path
    database_url: str
    redis: redis.Redis
    prefix: str = field(default_factory=lambda: f"onair-test-{secrets.token_hex(4)}:")
    nodes: dict[str, Node] = field(default_factory=dict)
    sources: bool = False
    """Each node runs a source ingest (ONAIR_SOURCE_PORT) on a port of its own."""

    def env(self, node_id: str, port: int, source_port: int = 0) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ONAIR_DATA_DIR": str(self.root / node_id),
            "ONAIR_DATABASE_URL": self.database_url,
            "ONAIR_REDIS_URL": "redis://127.0.0.1:6379/0",
            "ONAIR_REDIS_PREFIX": self.prefix,
            "ONAIR_NODE_ID": node_id,
            "ONAIR_NODE_URL": f"http://127.0.0.1:{port}",
            "ONAIR_RECORDINGS_DIR": str(self.root / "recordings"),
            "ONAIR_SOURCE_PORT": str(source_port),
            "ONAIR_RECORDING_SEGMENT_S": "2",
            "ONAIR_SIGNUP_PER_HOUR": "1000",
            "ONAIR_LOGIN_PER_MINUTE": "1000",
        }

    def start(self, *node_ids: str) -> None:
        for node_id in node_ids:
            port = free_port()
            source_port = free_port() if self.sources else 0
            log = self.root / f"{node_id}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tests.cluster.node", str(port)],
                    env=self.env(node_id, port, source_port),
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.nodes[node_id] = Node(node_id, port, process, log, source_port)
        deadline = time.monotonic() + 60
        for node in self.nodes.values():
            while not self._up(node):
                if node.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"node {node.node_id} did not start:\n{self.logs()}")
                time.sleep(0.1)

    def _up(self, node: Node) -> bool:
        try:
            httpx.get(f"{node.url}/api/v1/shows", timeout=1)
        except httpx.HTTPError:
            return False
        return bool(self.redis.exists(f"{self.prefix}node:{node.node_id}"))

    def owner(self, show_id: int) -> str | None:
        raw = self.redis.get(f"{self.prefix}show:{show_id}:owner")
        return raw.decode() if isinstance(raw, bytes) else None

    def wait_owner(self, show_id: int, *, not_: str | None = None, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owner = self.owner(show_id)
            if owner is not None and owner != not_:
                return owner
            time.sleep(0.05)
        raise AssertionError(f"show {show_id} has no owner (but {not_}):\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.node_id}\n{n.log.read_text()[-3000:]}" for n in self.nodes.values()
        )

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(10)
            if node.process.poll() is None:
                node.kill()
        keys = list(self.redis.scan_iter(match=f"{self.prefix}*"))
        if keys:
            self.redis.delete(*keys)


@contextlib.contextmanager
def world(root: Path, database_url: str, songs: list[tuple[Path, str]]) -> Iterator[World]:
    from onair.db.migrate import upgrade

    upgrade(database_url)
    import asyncio

    asyncio.run(seed_songs(database_url, songs))
    running = World(root, database_url, require_redis())
    try:
        yield running
    finally:
        running.stop()


def tone_songs(root: Path) -> list[tuple[Path, str]]:
    """The catalog: Concert A (440 Hz) and High E (660 Hz), a minute each, and the Chirp."""
    a, e, chirp = root / "a440.flac", root / "e660.flac", root / "chirp.flac"
    write_song(a, 440.0, 60.0, 0.3)
    write_song(e, 660.0, 60.0, 0.3)
    write_chirp(chirp, 60.0)
    return [(a, "Concert A"), (e, "High E"), (chirp, "Chirp")]


@contextlib.contextmanager
def host(url: str, name: str) -> Iterator[httpx.Client]:
    """A signed-in host talking to one node."""
    with httpx.Client(base_url=url, timeout=20) as client:
        r = client.post(
            "/api/v1/accounts/signup",
            json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        yield client


def new_show(client: httpx.Client, title: str, *songs: str) -> int:
    r = client.post("/api/v1/shows", json={"title": title, "genre": "Test"})
    assert r.status_code == 201, r.text
    show_id = int(r.json()["id"])
    for song in songs:
        found = client.get("/api/v1/catalog/search", params={"q": song}).json()["tracks"]
        r = client.post(f"/api/v1/shows/{show_id}/queue", json={"track_id": found[0]["id"]})
        assert r.status_code == 201, r.text
    return show_id
