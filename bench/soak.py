"""Soak: several nodes, many live shows, chat, WebSocket clients and stream listeners for minutes.

Issue 9: 3 nodes, 20 live shows, 2,000 WebSocket clients, 1,000 stream listeners, chat at 50
messages per second for 10 minutes: no listener underrun, no lost message, memory of each node
flat after warm-up; figures per node.

Everything runs on 127.0.0.1: `onair serve` nodes (subprocesses, killed on exit even on
Ctrl-C) on a PostgreSQL database of the run's own (created, migrated, dropped) and the shared
Redis under a key prefix of the run's own (its keys deleted at the end). The catalog is a few
generated tone songs (as the cluster tests make theirs). Each show has a host of its own, a
queue long enough for the run and goes live; its studio lands wherever the cluster puts it.

Clients run in --client-processes processes of their own:
- WebSocket clients (`/api/v1/rooms/{id}/ws`), spread over shows and nodes; --chat-rate / 1
  of them are signed-in senders (1 message/s each, under the default chat limit of 3 per 2 s).
  A message's text carries a unique id and its send time (time.time(), one machine clock), so
  each client records which ids it received, in which order, and how late.
- Stream listeners (`/listen/{id}.mp3`, plain HTTP, no ICY metadata), spread over shows and
  nodes, reading as a player does. From the end of warm-up each is a player with a --buffer-s
  buffer drained at the stream's bitrate (icy-br): an underrun is a moment that buffer ran dry
  (the player then rebuffers). Seconds with under 90 % of the bitrate are counted as well, as a
  rougher sign of jitter.

Figures per node: RSS at the end of warm-up and at the end, the slope of RSS after warm-up
(least squares, MB/min), CPU seconds over the measured span, clients, listeners, underruns.
Overall: messages sent, acknowledged, delivered / expected, lost (acknowledged, but missing at
a client of that room that was connected throughout), out of order, p50/p95 latency.

Fails (exit 1) on an underrun, a lost message, a dropped client or listener, or a node whose
RSS grows faster than --max-growth-mb-per-min after warm-up. The warm-up lasts until every
room's catch-up history (its last 1,000 events, about 2 KB each with their frames) is full: at
50 messages/s over 20 rooms that is 400 s, and a shorter one measured the histories filling
(the 7-8 MB/min of the first reduced run: 6 rooms at 8 messages/s each fill in 2 minutes).
Why 2 MB/min by default: 50 messages/s is 3,000 a minute, so a leak of one chat message's worth
(~0.7 KB: its text, event dict and JSON frame) per message shows as ~2 MB/min, while a node that
is flat moves by allocator noise (arenas, caches filling once) that the warm-up is there to
absorb.

    .venv/bin/python bench/soak.py                     # the issue's scale (10 min + warm-up)
    .venv/bin/python bench/soak.py --minutes 1 --ws 300 --listeners 100 --shows 6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import fractions
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from machine import cpu_model, cpu_seconds
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.rooms.hub import HISTORY  # noqa: E402

console = Console(width=170)
COOKIE = "onair_session"
PASSWORD = "soak-password-1"
RATE = 48_000
SONG_S = 120.0
SONGS = 6
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_DSN = os.environ.get("ONAIR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PR_SET_PDEATHSIG = 1
SHORT_SECOND = 0.9
PER_SENDER = 1.0
"""Messages per second one sender account sends: under the default chat limit (1.5/s)."""
GRACE_S = 5.0
SERVE = (sys.executable, "-m", "onair", "serve", "--no-demo")
MIN_WARMUP_S = 60.0


# --- the world: database, catalog, nodes


def write_song(path: Path, freq: float, seconds: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    mono = 0.3 * np.sin(2 * np.pi * freq * t)
    pcm = (np.vstack([mono, mono]) * 32767).astype(np.int16).T.reshape(1, -1)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = 0
        frame.time_base = fractions.Fraction(1, RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def seed_songs(url: str, songs: list[tuple[Path, str]]) -> None:
    from onair.catalog.audiofile import probe_audio_file
    from onair.catalog.service import CatalogWriter, TrackInput
    from onair.clock import SystemClock
    from onair.db.base import make_engine, make_sessionmaker

    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        items = []
        for path, title in songs:
            info = probe_audio_file(path)
            items.append(
                TrackInput(
                    source="soak",
                    source_key=f"soak:{title}",
                    title=title,
                    artists=(f"Soak {title}",),
                    genres=("Test",),
                    duration_s=info.duration_s,
                    loudness_lufs=info.loudness_lufs,
                    audio_path=str(path),
                )
            )
        await CatalogWriter(db, SystemClock()).write(items)
        await db.commit()
    await engine.dispose()


async def _admin(sql: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@contextlib.contextmanager
def database() -> Any:
    name = f"onair_soak_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Node:
    node_id: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    rss: list[tuple[float, float]] = field(default_factory=list)  # (time, MB)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@contextlib.contextmanager
def nodes(root: Path, database_url: str, prefix: str, count: int) -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    running: list[Node] = []
    try:
        for i in range(count):
            node_id, port = f"soak{i}", free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
            env |= {
                "PYTHONPATH": str(ROOT),
                "ONAIR_DATA_DIR": str(root / node_id),
                "ONAIR_DATABASE_URL": database_url,
                "ONAIR_REDIS_URL": REDIS_URL,
                "ONAIR_REDIS_PREFIX": prefix,
                "ONAIR_NODE_ID": node_id,
                "ONAIR_NODE_URL": f"http://127.0.0.1:{port}",
                "ONAIR_RECORDINGS_DIR": str(root / "recordings"),
                "ONAIR_SOURCE_PORT": "0",
                "ONAIR_SIGNUP_PER_HOUR": "1000000",
                "ONAIR_LOGIN_PER_MINUTE": "1000000",
                "ONAIR_PROGRAMMING_RULES": "none",
            }
            (root / node_id).mkdir(parents=True, exist_ok=True)
            log = root / f"{node_id}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=root / node_id,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches only us; we stop the nodes
                    preexec_fn=_die_with_parent,
                )
            running.append(Node(node_id, port, process, log))
        deadline = time.monotonic() + 90
        for node in running:
            while not _up(node, client, prefix):
                if node.process.poll() is not None or time.monotonic() > deadline:
                    tail = node.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"node {node.node_id} did not start:\n{tail}")
                time.sleep(0.2)
        yield running
    finally:
        for node in running:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in running:
            try:
                node.process.wait(15)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _up(node: Node, client: Any, prefix: str) -> bool:
    try:
        httpx.get(f"{node.url}/api/v1/shows", timeout=2)
    except httpx.HTTPError:
        return False
    return bool(client.exists(f"{prefix}node:{node.node_id}"))


# --- the shows and the senders' accounts (this process, over the HTTP API)


def _expect(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")


async def _sign_up(http: httpx.AsyncClient, name: str) -> str:
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
    )
    _expect(r, 201)
    return str(http.cookies[COOKIE])


async def _live_show(url: str, i: int, songs_needed: int) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await _sign_up(http, f"soak_host{i:03d}")
        r = await http.post("/api/v1/shows", json={"title": f"Soak {i}", "genre": "Test"})
        _expect(r, 201)
        show_id = int(r.json()["id"])
        found = (await http.get("/api/v1/catalog/search", params={"q": "Tone"})).json()["tracks"]
        if not found:
            raise RuntimeError("the catalog search found none of the soak's songs")
        for k in range(songs_needed):
            track = found[(i + k) % len(found)]
            r = await http.post(f"/api/v1/shows/{show_id}/queue", json={"track_id": track["id"]})
            _expect(r, 201)
        _expect(await http.post(f"/api/v1/shows/{show_id}/live"), 200)
        return show_id


async def _session(url: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return await _sign_up(http, name)


async def prepare(urls: list[str], shows: int, senders: int, songs_needed: int) -> Any:
    show_ids: list[int] = []
    for first in range(0, shows, 4):
        batch = range(first, min(shows, first + 4))
        show_ids += await asyncio.gather(
            *(_live_show(urls[i % len(urls)], i, songs_needed) for i in batch)
        )
    cookies: list[str] = []
    for first in range(0, senders, 6):
        batch = range(first, min(senders, first + 6))
        cookies += await asyncio.gather(
            *(_session(urls[j % len(urls)], f"soak_s{j:04d}") for j in batch)
        )
    return show_ids, cookies


# --- the clients (child processes)


@dataclass
class Spec:
    """What one client process runs: (node index, port, show id[, cookie, sender index])."""

    sockets: list[tuple[int, int, int, str | None, int]]
    listeners: list[tuple[int, int, int]]
    senders: int
    rate: float
    buffer_s: float
    connect_rate: float


@dataclass
class Room:
    node: int
    show: int
    welcomed_at: float = math.nan
    closed: str = ""
    closed_at: float = math.nan
    ids: array[int] = field(default_factory=lambda: array("q"))
    seqs_backwards: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    sender: int = -1
    sent: list[tuple[int, float]] = field(default_factory=list)  # (id, time)
    acked: dict[int, float] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)


@dataclass
class Listener:
    node: int
    show: int
    byte_rate: int = 16_000
    status: str = ""
    ended: bool = False
    total: int = 0
    seconds: dict[int, int] = field(default_factory=dict)
    underruns: int = 0
    # the player, from the end of warm-up
    play_from: float = math.nan
    played_bytes: int = 0
    credit: float = 0.0


class ListenerProtocol(asyncio.Protocol):
    def __init__(self, heard: Listener, show: int, clock: dict[str, float], buffer_s: float):
        self.heard, self.show, self.clock, self.buffer_s = heard, show, clock, buffer_s
        self.head = b""
        self.body = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        request = f"GET /listen/{self.show}.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        transport.write(request.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.head[:end].decode("latin-1").split("\r\n")
            self.heard.status = lines[0]
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "icy-br":
                    self.heard.byte_rate = int(value.strip()) * 1000 // 8
            data, self.body = self.head[end + 4 :], True
        self._count(len(data))

    def _count(self, n: int) -> None:
        now = time.time()
        heard = self.heard
        heard.total += n
        warm, end = self.clock.get("warm", math.inf), self.clock.get("end", math.inf)
        if not warm <= now <= end:
            return
        second = int(now - warm)
        heard.seconds[second] = heard.seconds.get(second, 0) + n
        if math.isnan(heard.play_from):
            heard.play_from, heard.credit = warm, self.buffer_s * heard.byte_rate
        self.check(now)
        heard.played_bytes += n

    def check(self, now: float) -> None:
        """Did the player run dry before `now`? If so it rebuffers from here."""
        heard = self.heard
        if math.isnan(heard.play_from):
            return
        needed = (now - heard.play_from) * heard.byte_rate
        if heard.played_bytes + heard.credit < needed:
            heard.underruns += 1
            heard.play_from, heard.played_bytes = now, 0
            heard.credit = self.buffer_s * heard.byte_rate

    def connection_lost(self, exc: Exception | None) -> None:
        self.heard.ended = True
        if not self.done.done():
            self.done.set_result(None)


async def _listen(heard: Listener, port: int, show: int, clock: dict[str, float], spec: Spec):
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await loop.create_connection(
            lambda: ListenerProtocol(heard, show, clock, spec.buffer_s), "127.0.0.1", port
        )
    except OSError as exc:
        heard.status, heard.ended = f"connect failed: {exc}", True
        return None
    return protocol


def _message_id(sender: int, n: int) -> int:
    return sender * 1_000_000 + n


async def _socket(
    room: Room, port: int, cookie: str | None, clock: dict[str, float], spec: Spec
) -> None:
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else None
    uri = f"ws://127.0.0.1:{port}/api/v1/rooms/{room.show}/ws"
    try:
        async with connect(
            uri, additional_headers=headers, origin=f"http://127.0.0.1:{port}", max_size=None
        ) as ws:  # type: ignore[arg-type]
            sending = None
            if room.sender >= 0:
                sending = asyncio.create_task(_send(ws, room, clock, spec))
            last_seq = -1
            async for frame in ws:
                now = time.time()
                for event in json.loads(frame):
                    kind = event.get("type")
                    if kind == "room.welcome":
                        room.welcomed_at = now
                    elif kind == "chat.message":
                        seq = int(event.get("seq") or 0)
                        if seq <= last_seq:
                            room.seqs_backwards += 1
                        last_seq = max(last_seq, seq)
                        text = str(event["message"]["text"])
                        if text.startswith("soak "):
                            _, mid, sent_at = text.split()
                            room.ids.append(int(mid))
                            room.latencies.append(now - float(sent_at))
                    elif kind == "chat.ack":
                        room.acked[int(event["ref"])] = now
                    elif kind == "error" and event.get("ref") is not None:
                        code = str(event.get("code"))
                        room.refused[code] = room.refused.get(code, 0) + 1
            if sending is not None:
                sending.cancel()
            room.closed = f"closed {ws.close_code} {ws.close_reason}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a refused or broken connection is a figure, not a crash
        room.closed = f"{exc.__class__.__name__}: {exc}"[:120]
        room.closed_at = time.time()


async def _send(ws: Any, room: Room, clock: dict[str, float], spec: Spec) -> None:
    while "chat" not in clock:  # noqa: ASYNC110 (set by the parent's message)
        await asyncio.sleep(0.05)
    period = spec.senders / spec.rate
    start = clock["chat"] + room.sender / spec.rate
    n = 0
    while True:
        at = start + n * period
        if at > clock["end"]:
            return
        await asyncio.sleep(max(0.0, at - time.time()))
        mid = _message_id(room.sender, n)
        now = time.time()
        room.sent.append((mid, now))
        action = {"action": "chat.send", "text": f"soak {mid} {now:.6f}", "ref": mid}
        await ws.send(json.dumps(action))
        n += 1


def client_process(conn: Connection, spec: Spec) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(KeyboardInterrupt):
        conn.send(asyncio.run(_clients(conn, spec)))


async def _clients(conn: Connection, spec: Spec) -> Any:
    clock: dict[str, float] = {}
    rooms: list[Room] = []
    tasks: list[asyncio.Task[None]] = []
    gap = 1 / spec.connect_rate
    for node, port, show, cookie, sender in spec.sockets:
        room = Room(node, show, sender=sender)
        rooms.append(room)
        tasks.append(asyncio.create_task(_socket(room, port, cookie, clock, spec)))
        await asyncio.sleep(gap)
    heard: list[Listener] = []
    protocols: list[ListenerProtocol | None] = []
    for node, port, show in spec.listeners:
        one = Listener(node, show)
        heard.append(one)
        protocols.append(await _listen(one, port, show, clock, spec))
        await asyncio.sleep(gap)
    deadline = time.monotonic() + 60
    waiting = [r for r in rooms if math.isnan(r.welcomed_at) and not r.closed]
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        waiting = [r for r in waiting if math.isnan(r.welcomed_at) and not r.closed]
    welcomed = sum(not math.isnan(r.welcomed_at) for r in rooms)
    conn.send(("ready", welcomed, sum(bool(h.status) for h in heard)))
    loop = asyncio.get_running_loop()
    times = await loop.run_in_executor(None, conn.recv)
    clock.update(times)
    await asyncio.sleep(max(0.0, clock["end"] - time.time()))
    for one, protocol in zip(heard, protocols, strict=True):  # a stall at the very end
        if protocol is not None and not one.ended:
            protocol.check(clock["end"])
    await asyncio.sleep(GRACE_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Plain dicts: the classes here are __mp_main__'s, which the parent cannot unpickle.
    return [vars(r) for r in rooms], [vars(h) for h in heard]


# --- the run


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def sample_rss(running: list[Node], stop: threading.Event) -> None:
    while not stop.wait(2.0):
        now = time.time()
        for node in running:
            with contextlib.suppress(OSError):
                node.rss.append((now, rss_mb(node.process.pid)))


def slope_mb_per_min(samples: list[tuple[float, float]], since: float) -> float:
    points = [(t, mb) for t, mb in samples if t >= since]
    if len(points) < 3:
        return math.nan
    t, mb = np.array(points).T
    return float(np.polyfit((t - t[0]) / 60, mb, 1)[0])


def rss_at(samples: list[tuple[float, float]], at: float) -> float:
    near = [mb for t, mb in samples if abs(t - at) <= 3]
    return float(np.median(near)) if near else math.nan


def run(args: argparse.Namespace) -> int:
    senders = math.ceil(args.chat_rate / PER_SENDER)
    if senders > args.ws:
        raise SystemExit(f"--ws {args.ws} is fewer than the {senders} senders needed")
    total_s = args.warmup_s + args.minutes * 60
    songs_needed = math.ceil((total_s + 300) / SONG_S)
    prefix = f"onair-soak-{secrets.token_hex(4)}:"
    with tempfile.TemporaryDirectory(prefix="onair-soak-") as tmp, database() as url:
        root = Path(tmp)
        from onair.db.migrate import upgrade

        upgrade(url)
        songs = []
        for k in range(SONGS):
            path = root / f"tone{k}.flac"
            write_song(path, 330.0 + 55.0 * k, SONG_S)
            songs.append((path, f"Tone {k}"))
        asyncio.run(seed_songs(url, songs))
        with nodes(root, url, prefix, args.nodes) as running:
            console.print(
                "nodes: " + ", ".join(f"{n.node_id} {n.url} (pid {n.process.pid})" for n in running)
            )
            urls = [n.url for n in running]
            show_ids, cookies = asyncio.run(prepare(urls, args.shows, senders, songs_needed))
            console.print(f"{len(show_ids)} shows live, {senders} sender accounts")
            code = measure(args, running, show_ids, cookies)
            for node in running:  # what went wrong inside a node is part of the figures
                lines = node.log.read_text(errors="replace").splitlines()
                marks = ("Error", "Traceback", "WARNING", "dropped listener")
                errors = [line for line in lines if any(m in line for m in marks)]
                if errors or code:
                    console.print(f"[yellow]{node.node_id}'s log: {len(errors)} warning lines")
                    console.print("\n".join(errors[-args.log_lines :]), markup=False)
            return code


def measure(args: argparse.Namespace, running: list[Node], show_ids: list[int], cookies: list[str]):
    n_nodes, n_shows = len(running), len(show_ids)
    sockets: list[tuple[int, int, int, str | None, int]] = []
    for k in range(args.ws):
        show = k % n_shows
        node = (k // n_shows + show) % n_nodes
        cookie, sender = (cookies[k], k) if k < len(cookies) else (None, -1)
        sockets.append((node, running[node].port, show_ids[show], cookie, sender))
    listeners = []
    for k in range(args.listeners):
        show = k % n_shows
        node = (k // n_shows + show + 1) % n_nodes
        listeners.append((node, running[node].port, show_ids[show]))
    procs = args.client_processes
    ctx = mp.get_context("spawn")
    peers: list[tuple[Any, Connection]] = []
    for socks, lis in zip(split(sockets, procs), split(listeners, procs), strict=True):
        ours, theirs = ctx.Pipe()
        spec = Spec(
            socks, lis, len(cookies), args.chat_rate, args.buffer_s, args.connect_rate / procs
        )
        process = ctx.Process(target=client_process, args=(theirs, spec), daemon=True)
        process.start()
        peers.append((process, ours))
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(running, stop), daemon=True)
    sampler.start()
    try:
        joined = [conn.recv() for _, conn in peers]
        console.print(
            f"joined: {sum(j[1] for j in joined):,} of {args.ws:,} WebSocket clients, "
            f"{sum(j[2] for j in joined):,} of {args.listeners:,} listeners answered"
        )
        chat = time.time() + 1.0
        warm = chat + args.warmup_s
        end = warm + args.minutes * 60
        for _, conn in peers:
            conn.send({"chat": chat, "warm": warm, "end": end})
        console.print(
            f"chat from {dt.datetime.fromtimestamp(chat, dt.UTC):%H:%M:%S}, warm-up ends "
            f"{dt.datetime.fromtimestamp(warm, dt.UTC):%H:%M:%S}, end "
            f"{dt.datetime.fromtimestamp(end, dt.UTC):%H:%M:%S} UTC"
        )
        time.sleep(max(0.0, warm - time.time()))
        cpu_warm = [cpu_seconds(n.process.pid) for n in running]
        time.sleep(max(0.0, end - time.time()))
        cpu_end = [cpu_seconds(n.process.pid) for n in running]
        alive = [n.process.poll() is None for n in running]
        results = [conn.recv() for _, conn in peers]
    finally:
        stop.set()
        for process, _ in peers:
            process.join(10)
            if process.is_alive():
                process.kill()
    rooms = [Room(**r) for rs, _ in results for r in rs]
    heard = [Listener(**h) for _, hs in results for h in hs]
    return report(args, running, rooms, heard, chat, warm, end, cpu_warm, cpu_end, alive)


def report(
    args: argparse.Namespace,
    running: list[Node],
    rooms: list[Room],
    heard: list[Listener],
    chat: float,
    warm: float,
    end: float,
    cpu_warm: list[float],
    cpu_end: list[float],
    alive: list[bool],
) -> int:
    failures: list[str] = []
    span = end - warm
    # Chat: every acknowledged message of a room should reach each client of that room that
    # was welcomed before chat began and stayed connected.
    acked_by_show: dict[int, set[int]] = {}
    sent = acked = 0
    refused: dict[str, int] = {}
    for r in rooms:
        if r.sender < 0:
            continue
        sent += len(r.sent)
        acked += len(r.acked)
        acked_by_show.setdefault(r.show, set()).update(r.acked)
        for code, n in r.refused.items():
            refused[code] = refused.get(code, 0) + n
    steady = [r for r in rooms if r.welcomed_at < chat and not r.closed]
    dropped = [r for r in rooms if r.closed]
    expected = delivered = lost = out_of_order = 0
    for r in steady:
        want = acked_by_show.get(r.show, set())
        got = set(r.ids)
        expected += len(want)
        delivered += len(want & got)
        lost += len(want - got)
        out_of_order += r.seqs_backwards
        # per sender, ids arrive in the order they were sent
        last: dict[int, int] = {}
        for mid in r.ids:
            s = mid // 1_000_000
            if mid < last.get(s, -1):
                out_of_order += 1
            last[s] = max(last.get(s, -1), mid)
    latencies = np.concatenate([np.frombuffer(r.latencies, dtype=np.float64) for r in rooms])
    p50, p95, p99 = np.quantile(latencies, [0.5, 0.95, 0.99]) if len(latencies) else (math.nan,) * 3
    table = Table(title="per node", title_justify="left")
    for name in (
        "node",
        "RSS warm MB",
        "RSS end MB",
        "slope MB/min",
        "CPU s (span)",
        "CPU % core",
        "WS clients",
        "dropped",
        "listeners",
        "underruns",
        "short s",
        "ended",
    ):
        table.add_column(name, justify="right")
    for i, node in enumerate(running):
        mine = [h for h in heard if h.node == i]
        ok = [h for h in mine if h.status.startswith("HTTP/1.1 200")]
        under = sum(h.underruns for h in ok)
        short = sum(
            1
            for h in ok
            for s in range(int(span))
            if h.seconds.get(s, 0) < SHORT_SECOND * h.byte_rate
        )
        ended = sum(h.ended for h in ok)
        slope = slope_mb_per_min(node.rss, warm)
        cpu = cpu_end[i] - cpu_warm[i]
        ws = sum(1 for r in rooms if r.node == i and not math.isnan(r.welcomed_at))
        gone = sum(1 for r in dropped if r.node == i)
        table.add_row(
            node.node_id,
            f"{rss_at(node.rss, warm):.0f}",
            f"{rss_at(node.rss, end):.0f}",
            f"{slope:+.2f}",
            f"{cpu:.0f}",
            f"{cpu / span:.0%}",
            f"{ws:,}",
            f"{gone:,}",
            f"{len(ok):,}/{len(mine):,}",
            f"{under:,}",
            f"{short:,}",
            f"{ended:,}",
        )
        if not alive[i]:
            failures.append(f"node {node.node_id} died during the run")
        if under:
            failures.append(f"{under} underruns on {node.node_id}")
        if ended or len(ok) < len(mine):
            refused_n = len(mine) - len(ok)
            failures.append(f"{node.node_id}: {refused_n} listeners refused, {ended} ended")
        if gone:
            failures.append(f"{node.node_id}: {gone} WebSocket clients dropped")
        if not slope <= args.max_growth_mb_per_min:
            failures.append(
                f"{node.node_id}: RSS grew {slope:+.2f} MB/min after warm-up "
                f"(limit {args.max_growth_mb_per_min:g})"
            )
    console.print(table)
    console.print(
        f"chat: {sent:,} sent, {acked:,} acknowledged"
        + (f" (refused: {refused})" if refused else "")
        + f"; delivered {delivered:,} / expected {expected:,}; lost {lost:,}; out of order "
        f"{out_of_order:,}; latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 "
        f"{p99 * 1000:.0f} ms; {len(steady):,} clients connected throughout, "
        f"{len(dropped):,} dropped"
    )
    for r in dropped[:5]:
        when = (r.closed_at - chat) if not math.isnan(r.closed_at) else math.nan
        console.print(
            f"  dropped: node {r.node}, show {r.show}, sender {r.sender}, welcomed "
            f"{r.welcomed_at - chat:.1f} s and closed {when:.1f} s from chat's start: {r.closed}"
        )
    if lost:
        failures.append(f"{lost} messages lost")
    if out_of_order:
        failures.append(f"{out_of_order} messages out of order")
    if acked < sent:
        failures.append(f"{sent - acked} messages not acknowledged")
    for failure in failures:
        console.print(f"[red]FAIL: {failure}")
    if not failures:
        console.print("[green]PASS: no underrun, no lost message, memory flat after warm-up")
    return 1 if failures else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--shows", type=int, default=20)
    parser.add_argument("--ws", type=int, default=2000, help="WebSocket clients, senders included")
    parser.add_argument("--listeners", type=int, default=1000, help="MP3 stream listeners")
    parser.add_argument("--chat-rate", type=float, default=50, help="messages per second, all")
    parser.add_argument("--minutes", type=float, default=10, help="measured minutes")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=None,
        help="seconds before measuring (default: 60, or longer until every room's catch-up "
        "history is full; see the docstring)",
    )
    parser.add_argument(
        "--buffer-s", type=float, default=2.0, help="a listener's player buffer (default 2 s)"
    )
    parser.add_argument(
        "--max-growth-mb-per-min",
        type=float,
        default=2.0,
        help="RSS slope after warm-up above which a node fails (default 2; see the docstring)",
    )
    parser.add_argument("--client-processes", type=int, default=max(2, (os.cpu_count() or 2) - 1))
    parser.add_argument("--log-lines", type=int, default=30, help="of a node's log on errors")
    parser.add_argument("--connect-rate", type=float, default=200, help="connections/s, all")
    args = parser.parse_args(argv)
    if min(args.nodes, args.shows, args.ws, args.client_processes) < 1 or args.minutes <= 0:
        parser.error("--nodes, --shows, --ws, --client-processes and --minutes must be positive")
    fill_s = history_fill_s(args.shows, args.chat_rate)
    if args.warmup_s is None:
        args.warmup_s = max(MIN_WARMUP_S, fill_s)
    elif args.warmup_s < fill_s:
        console.print(
            f"[yellow]warm-up {args.warmup_s:g} s is shorter than the {fill_s:.0f} s the rooms' "
            "catch-up histories take to fill: their growth will show in the RSS slope[/yellow]"
        )
    return args


def history_fill_s(shows: int, chat_rate: float) -> float:
    """Seconds until each room's catch-up history (the last HISTORY events, about 2 KB each
    with their frames) is full at `chat_rate` messages per second over `shows` rooms, plus a
    tenth: until then a node's memory grows by design, a few MB a minute."""
    if chat_rate <= 0:
        return 0.0
    return 1.1 * HISTORY * shows / chat_rate


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    console.print(
        f"soak: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"{dt.date.today().isoformat()}; {args.nodes} nodes, {args.shows} live shows, "
        f"{args.ws:,} WebSocket clients, {args.listeners:,} listeners, chat "
        f"{args.chat_rate:g}/s, {args.minutes:g} min after {args.warmup_s:g} s warm-up"
    )
    started = time.monotonic()
    try:
        code = run(args)
    except KeyboardInterrupt:
        console.print("interrupted: the nodes are stopped, the database dropped")
        return 130
    console.print(f"the run took {time.monotonic() - started:.0f} s", style="dim")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
