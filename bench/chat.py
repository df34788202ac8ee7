"""Chat in one room: deliveries per second per server core and delivery latency, N clients.

The server is `onair serve` in its own process on 127.0.0.1 with a fresh database. A host signs
up and creates a show, left scheduled: chat is open before a show goes live, and a live show's
studio would add its own CPU to the figures. Clients join the show's room WebSocket from other
processes: signed-in senders (an account each, sending at most --per-sender messages/s, under
the default chat limit of 3 per 2 s) and anonymous readers, N in all. Together the senders send
--rate chat.send actions a second, evenly paced. Each text starts with the sender's time.time();
all run on one host, so a delivery's latency is its receive time minus that. Senders are in the
room too and receive everything, as a browser would.

For each N of the ladder, readers are added up to N. After --warmup s, a --window s span is
measured. The messages sent in it that the server took (acknowledged, or delivered to anyone),
times the clients in the room when it began, are the deliveries expected. Those received up to
--grace s after the span are counted and their latencies kept; the difference is lost, and a
client the server closed (4408: too slow; 1011: no pong in time) is counted as dropped. The
server's CPU (user + system, every thread, from /proc) over the span gives deliveries per second
per core = deliveries / server CPU seconds. The ladder stops at a level the server could not
keep up with at all.

The clients must cost less than the server, on the server's machine. A client is websockets'
sans-I/O protocol (its handshake, so permessage-deflate is negotiated as by its asyncio client,
and its framing of what is sent) on a bare asyncio transport under uvloop; the server's frames
are read by a few lines here and decoded with json.loads, since websockets' parser alone costs
more than the whole of this. Each client process's CPU and event-loop lag over the span are
printed, and so are the server loop's wait for a core and what other processes used: a level
where the clients were late or the machine was shared says so, as its latencies then include
that delay. --compression picks what the clients offer: permessage-deflate as browsers do
(uvicorn accepts it by default and then compresses every frame for every client), or none.

Target (issue 5): at least 50,000 deliveries per second per core, with p99 under 100 ms, at
2,000 clients.

    .venv/bin/python bench/chat.py
    .venv/bin/python bench/chat.py --clients 100,500,1000,2000 --rate 50
    .venv/bin/python bench/chat.py --compression deflate,none --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import faulthandler
import gc
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import numpy.typing as npt
import uvicorn
import uvloop
from machine import cpu_model, cpu_seconds
from rich.console import Console
from rich.table import Table
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri
from websockets.version import version as websockets_version

TARGET_PER_CORE = 50_000
TARGET_P99_S = 0.100
TARGET_CLIENTS = 2_000

COOKIE = "onair_session"
PASSWORD = "bench-password-1"
DEFAULT_CHAT_BURST, DEFAULT_CHAT_PER_SECONDS = 3, 2.0  # onair.settings' chat limit
START_TIMEOUT_S = 30
REPLY_TIMEOUT_S = 120
LAG_TICK_S = 0.01
SATURATED_CPU = 0.85
"""A client process using this much of a core is itself the bottleneck."""
LATE_LAG_S = 0.010
"""A client process whose event loop runs this late (p99), saturated or kept off the cores by
other work, adds that much to the latencies it measures."""
SHARED_MACHINE = 0.10
"""Other processes using this share of a core in the span make its figures suspect."""
PR_SET_PDEATHSIG = 1

console = Console(width=170)


def loop_waited(pid: int) -> float:
    """Seconds the process's main thread (its event loop) was ready to run but had no core.
    (machine.run_queue_wait sums every thread, and loses a thread's share when it ends.)"""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_busy() -> float:
    """CPU seconds all the machine's cores have spent busy (not idle, not waiting on I/O)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- the server (a child process)


@dataclass(frozen=True)
class Server:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # If this process is killed outright, the server must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/shows").is_success:
                return
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"onair serve did not start:\n{tail}")


def chat_limit(per_sender: float) -> dict[str, str]:
    """The chat limit's variables, loosened only when one sender would exceed the default."""
    if per_sender <= DEFAULT_CHAT_BURST / DEFAULT_CHAT_PER_SECONDS:
        return {}
    return {"ONAIR_CHAT_BURST": str(2 * math.ceil(per_sender)), "ONAIR_CHAT_PER_SECONDS": "1"}


@contextlib.contextmanager
def server_process(data_dir: Path, overrides: dict[str, str]) -> Iterator[Server]:
    """`onair serve` on 127.0.0.1, stopped (SIGINT, then SIGKILL) however the bench ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env |= {
        "ONAIR_DATA_DIR": str(data_dir),
        "ONAIR_SIGNUP_PER_HOUR": "1000000",
        "ONAIR_LOGIN_PER_MINUTE": "1000000",
        **overrides,
    }
    args = [sys.executable, "-m", "onair", "serve", "--no-demo"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        # Its own session: a Ctrl-C reaches only this process, which then stops the server.
        proc = subprocess.Popen(
            args,
            cwd=data_dir,  # away from the checkout's .env
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        _wait_until_serving(proc, f"http://127.0.0.1:{port}", log)
        yield Server(proc.pid, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the room and its senders' accounts (this process, over the HTTP API)


def _expect(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise RuntimeError(
            f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text}"
        )


async def _sign_up(http: httpx.AsyncClient, name: str) -> str:
    """Signs up an account in `http` (a browser of its own); returns its session cookie."""
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
    )
    _expect(r, 201)
    cookie = http.cookies.get(COOKIE)
    if cookie is None:
        raise RuntimeError(f"signing up {name} set no {COOKIE} cookie")
    return cookie


async def _session_of(url: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return await _sign_up(http, name)


async def prepare_room(url: str, senders: int) -> tuple[int, list[str]]:
    """A host's show and `senders` signed-up accounts: (show id, their session cookies)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as host:
        await _sign_up(host, "bench_host")
        r = await host.post("/api/v1/shows", json={"title": "Bench Chat"})
        _expect(r, 201)
        show_id = int(r.json()["id"])
    cookies: list[str] = []
    for first in range(0, senders, 8):  # password hashing is the server's: a few at once
        names = [f"bench_s{i:04d}" for i in range(first, min(senders, first + 8))]
        cookies += await asyncio.gather(*(_session_of(url, n) for n in names))
    return show_id, cookies


# --- the clients (child processes)


@dataclass(frozen=True)
class Endpoint:
    port: int
    show_id: int
    deflate: bool

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/rooms/{self.show_id}/ws"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


EventsHandler = Callable[[list[dict[str, Any]], float], None]


class RoomSocket(asyncio.Protocol):
    """One client of the room: frames in, JSON arrays of events out to `on_events`.

    websockets' sans-I/O protocol makes the handshake (and so negotiates permessage-deflate as
    its asyncio client would) and frames what is sent; frames from the server are read here,
    since its parser costs more per frame than this whole client is allowed. `welcomed`
    resolves on the first frame (the room.welcome) or fails with why there was none;
    `close_code` is the server's close code, if it closed the connection.
    """

    def __init__(self, endpoint: Endpoint, cookie: str | None, on_events: EventsHandler) -> None:
        extensions = (
            [ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5})]
            if endpoint.deflate
            else None
        )
        self.ws = ClientProtocol(
            parse_uri(endpoint.uri),
            origin=Origin(endpoint.origin),
            extensions=extensions,
            max_size=None,
        )
        self.cookie = cookie
        self.on_events = on_events
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.lost = False
        self.transport: asyncio.Transport | None = None
        self._handshake = b""
        self._buffer = b""
        self._message: list[bytes] = []
        self._compressed = False
        self._inflate: Callable[[bytes], bytes] | None = None
        self._inflate_bits = 0

    @property
    def deflate(self) -> bool:
        return self._inflate_bits > 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        request = self.ws.connect()
        if self.cookie is not None:
            request.headers["Cookie"] = f"{COOKIE}={self.cookie}"
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.ws.state is not State.OPEN:
            data = self._handshake_received(data)
        if self._buffer:
            data = self._buffer + data
        pos, size = 0, len(data)
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F  # a server's frames are not masked
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4]), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10]), 10
            if size - pos < head + length:
                break
            self._frame(data[pos], data[pos + head : pos + head + length], now)
            pos += head + length
        self._buffer = data[pos:]

    def _handshake_received(self, data: bytes) -> bytes:
        """Hands websockets the response's headers; returns what follows them."""
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self._handshake[: end + 4], self._handshake[end + 4 :]
        self._handshake = b""
        self.ws.receive_data(head)
        self.ws.events_received()
        if self.ws.state is not State.OPEN:
            if not self.welcomed.done():
                why = self.ws.handshake_exc or ConnectionError("handshake refused")
                self.welcomed.set_exception(why)
            self.abort()
            return b""
        for extension in self.ws.extensions:
            if isinstance(extension, PerMessageDeflate):
                self._inflate_bits = extension.remote_max_window_bits
                if not extension.remote_no_context_takeover:
                    self._inflate = zlib.decompressobj(wbits=-self._inflate_bits).decompress
        return rest

    def _frame(self, first: int, payload: bytes, now: float) -> None:
        opcode = first & 0x0F
        if opcode == 0x9:  # ping
            self.ws.send_pong(payload)
            self._flush()
            return
        if opcode == 0x8:  # close
            self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
            self.abort()
            return
        if opcode in (0x1, 0x2):
            self._compressed = bool(first & 0x40)
        elif opcode != 0x0:  # a pong
            return
        self._message.append(payload)
        if not first & 0x80:
            return
        message = self._message[0] if len(self._message) == 1 else b"".join(self._message)
        self._message = []
        if self._compressed:
            inflate = self._inflate or zlib.decompressobj(wbits=-self._inflate_bits).decompress
            message = inflate(message + b"\x00\x00\xff\xff")
        if not self.welcomed.done():
            self.welcomed.set_result(None)
        self.on_events(json.loads(message), now)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(message).encode())
        self._flush()

    def _flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.welcomed.done():
            why = f"closed {self.close_code}" if self.close_code else "connection lost"
            self.welcomed.set_exception(ConnectionError(f"no room.welcome: {why}"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Tally:
    """The deliveries, in one client process, of the messages sent in the measured span."""

    def __init__(self) -> None:
        self.start = math.inf
        self.end = -math.inf
        self.latencies = array("d")
        self.frames = 0
        """Frames that carried at least one of those messages."""
        self.seen: set[int] = set()
        """The numbers of those messages, each once."""

    def span(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.latencies = array("d")
        self.frames = 0
        self.seen = set()

    def events(self, events: list[dict[str, Any]], now: float) -> None:
        counted = 0
        for event in events:
            if event.get("type") == "chat.message":
                sent_at, _, number = event["message"]["text"].partition(" bench #")
                sent = float(sent_at)
                if self.start <= sent < self.end:
                    self.latencies.append(now - sent)
                    self.seen.add(int(number))
                    counted += 1
        if counted:
            self.frames += 1


@dataclass
class Sending:
    """What the senders sent in the measured span, and how the server answered."""

    sent: int = 0
    acked: set[int] = field(default_factory=set)
    """The numbers of the messages acknowledged."""
    errors: Counter[str] = field(default_factory=Counter)
    ack_latencies: array[float] = field(default_factory=lambda: array("d"))


@dataclass(frozen=True)
class ClientSpec:
    endpoint: Endpoint
    connect_rate: float
    cookies: tuple[str, ...] = ()
    """Sign-in cookies: this process holds the senders, one connection each."""


class ClientProcess:
    """The connections of one client process, driven by commands from the bench's process."""

    def __init__(self, spec: ClientSpec, conn: Connection) -> None:
        self.spec = spec
        self.conn = conn
        self.tally = Tally()
        self.sockets: list[RoomSocket] = []
        self.senders: list[RoomSocket] = []
        self.pending: dict[str, float] = {}
        self.sending = Sending()
        self.closed: Counter[int] = Counter()
        self.lags = array("d")
        self.in_span = False
        self.span_at: dict[str, float] = {}
        self.span_clients = 0
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # A thread waits on the pipe: the loop's own reader would make the pipe non-blocking,
        # and a large report would then fail half sent.
        threading.Thread(target=self._listen, args=(loop,), daemon=True).start()
        self._spawn(self._watch_lag())
        await self.done.wait()
        for sock in self.sockets:
            sock.abort()

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):  # the bench's process is gone
                command = ("stop",)
            loop.call_soon_threadsafe(self._command, *command)
            if command[0] == "stop":
                return

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _command(self, command: str, *args: Any) -> None:
        if command == "grow":
            self._spawn(self._grow(*args))
        elif command == "send":
            self._spawn(self._send_paced(*args))
        elif command == "span":
            self._span(*args)
        elif command == "report":
            self.conn.send(self._report())
        elif command == "stop":
            self.done.set()

    def live(self) -> list[RoomSocket]:
        return [s for s in self.sockets if not s.lost]

    def _prune(self, *, count: bool) -> None:
        """Forgets the connections that ended, counting them as dropped if `count`."""
        for sock in self.sockets:
            if sock.lost and count:
                self.closed[sock.close_code or 1006] += 1
        self.sockets = self.live()

    async def _connect(self, cookie: str | None) -> RoomSocket | Exception:
        loop = asyncio.get_running_loop()
        endpoint = self.spec.endpoint
        on_events = self.tally.events if cookie is None else self._sender_events
        try:
            _, sock = await loop.create_connection(
                lambda: RoomSocket(endpoint, cookie, on_events), "127.0.0.1", endpoint.port
            )
            await asyncio.wait_for(sock.welcomed, 30)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return exc
        return sock

    async def _grow(self, target: int) -> None:
        """Opens connections (the senders', then readers) until `target` are open, giving up
        after 20 failures or four times as long as the connect rate says (and 60 s)."""
        self._prune(count=False)
        failures: list[Exception] = []
        cookies = iter(self.spec.cookies[len(self.senders) :])
        batch_size = max(1, int(self.spec.connect_rate / 10))
        seconds = max(60.0, 4 * (target - len(self.sockets)) / self.spec.connect_rate)
        deadline = time.monotonic() + seconds
        while len(self.sockets) < target and len(failures) < 20:
            if time.monotonic() > deadline:
                failures.append(TimeoutError(f"joining took over {seconds:.0f} s"))
                break
            started = time.monotonic()
            batch = [
                next(cookies, None) for _ in range(min(batch_size, target - len(self.sockets)))
            ]
            for cookie, result in zip(
                batch, await asyncio.gather(*(self._connect(c) for c in batch)), strict=True
            ):
                if isinstance(result, Exception):
                    failures.append(result)
                    continue
                self.sockets.append(result)
                if cookie is not None:
                    self.senders.append(result)
            await asyncio.sleep(max(0.0, started + 0.1 - time.monotonic()))
        deflate = bool(self.sockets) and self.sockets[0].deflate
        gc.freeze()  # the connections live on: the collector need not walk them again
        self.conn.send(("grown", len(self.sockets), [repr(f) for f in failures[:3]], deflate))

    def _sender_events(self, events: list[dict[str, Any]], now: float) -> None:
        self.tally.events(events, now)
        for event in events:
            kind = event.get("type")
            if kind != "chat.ack" and kind != "error":
                continue
            ref = str(event.get("ref"))
            sent = self.pending.pop(ref, None)
            if sent is None or not self.tally.start <= sent < self.tally.end:
                continue
            if kind == "chat.ack":
                self.sending.acked.add(int(ref))
                self.sending.ack_latencies.append(now - sent)
            else:
                self.sending.errors[str(event.get("code"))] += 1

    async def _send_paced(self, start: float, rate: float) -> None:
        """`rate` messages a second from `start` on, the senders taking turns."""
        for k in itertools.count():
            delay = start + k / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sender = self.senders[k % len(self.senders)]
            if sender.lost:
                continue
            sent = time.time()
            ref = str(k)
            self.pending[ref] = sent
            if self.tally.start <= sent < self.tally.end:
                self.sending.sent += 1
            sender.send({"action": "chat.send", "text": f"{sent:.6f} bench #{k}", "ref": ref})

    def _span(self, start: float, end: float) -> None:
        self.tally.span(start, end)
        self.sending = Sending()
        self.closed = Counter()
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, start - time.time()), self._span_edge, "start")
        loop.call_later(max(0.0, end - time.time()), self._span_edge, "end")

    def _span_edge(self, edge: str) -> None:
        self.span_at[f"{edge}_at"] = time.monotonic()
        self.span_at[f"{edge}_cpu"] = cpu_seconds(os.getpid())
        if edge == "start":
            self._prune(count=False)
            self.span_clients = len(self.sockets)
            self.lags = array("d")
        self.in_span = edge == "start"

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK_S)
            if self.in_span:
                self.lags.append(loop.time() - before - LAG_TICK_S)

    def _report(self) -> dict[str, Any]:
        self._prune(count=True)  # ended in the span or its grace: they missed deliveries
        lags = np.frombuffer(self.lags, dtype=np.float64) if self.lags else np.zeros(1)
        return {
            "clients": self.span_clients,
            "latencies": self.tally.latencies.tobytes(),
            "frames": self.tally.frames,
            "cpu": self.span_at["end_cpu"] - self.span_at["start_cpu"],
            "elapsed": self.span_at["end_at"] - self.span_at["start_at"],
            "lag_p99": float(np.percentile(lags, 99)),
            "closed": dict(self.closed),
            "sent": self.sending.sent,
            "acked": list(self.sending.acked),
            "seen": list(self.tally.seen),
            "errors": dict(self.sending.errors),
            "ack_latencies": self.sending.ack_latencies.tobytes(),
        }


def client_process_main(spec: ClientSpec, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench's process stops this one
    faulthandler.enable()
    uvloop.run(ClientProcess(spec, conn).run())


@dataclass
class Peer:
    """A client process as the bench's process sees it."""

    process: mp.process.BaseProcess
    conn: Connection

    def ask(self, *command: Any) -> None:
        self.conn.send(command)

    def answer(self, timeout: float = REPLY_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"client process {self.process.pid} did not answer")
        try:
            return self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise RuntimeError(
                f"client process {self.process.pid} ended (exit code {self.process.exitcode})"
            ) from None


@contextlib.contextmanager
def client_processes(specs: Sequence[ClientSpec]) -> Iterator[list[Peer]]:
    context = mp.get_context("spawn")  # nothing of this process's loop or threads
    peers: list[Peer] = []
    try:
        for spec in specs:
            ours, theirs = context.Pipe()
            process = context.Process(target=client_process_main, args=(spec, theirs), daemon=True)
            process.start()
            theirs.close()  # so that the pipe ends if the process does
            peers.append(Peer(process, ours))
        yield peers
    finally:
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.ask("stop")
        for peer in peers:
            peer.process.join(5)
            if peer.process.is_alive():
                peer.process.kill()
                peer.process.join()


# --- the measurement


@dataclass
class Level:
    clients: int
    window: float
    expected: int
    """Deliveries expected: the messages the server took, times the clients in the room."""
    messages: int
    latencies: npt.NDArray[np.float64]
    frames: int
    sent: int
    acked: int
    errors: Counter[str]
    dropped: Counter[int]
    ack_latencies: npt.NDArray[np.float64]
    server_cpu: float
    server_waited: float
    client_cpu: list[float]
    client_lag_p99: list[float]
    others_cpu: float
    """CPU seconds the rest of the machine used in the span (other work on shared cores)."""
    failures: list[str]

    @property
    def deliveries(self) -> int:
        return len(self.latencies)

    @property
    def lost(self) -> int:
        return self.expected - self.deliveries

    @property
    def per_core(self) -> float:
        return self.deliveries / self.server_cpu if self.server_cpu > 0 else math.inf

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.deliveries else math.nan

    @property
    def clients_saturated(self) -> bool:
        return any(c >= SATURATED_CPU for c in self.client_cpu)

    @property
    def clients_late(self) -> bool:
        return self.clients_saturated or any(lag >= LATE_LAG_S for lag in self.client_lag_p99)

    @property
    def overloaded(self) -> bool:
        """The server fell behind for good: a tenth of what was sent in the span, or more,
        was still unanswered at the end of the grace, or nothing was delivered."""
        return self.sent > 0 and (self.acked < 0.9 * self.sent or self.deliveries == 0)

    def passes(self) -> bool:
        return (
            self.per_core >= TARGET_PER_CORE
            and self.quantile(0.99) < TARGET_P99_S
            and self.lost == 0
            and not self.dropped
        )


@dataclass(frozen=True)
class Plan:
    ladder: list[int]
    rate: float
    senders: int
    reader_processes: int
    window: float
    warmup: float
    grace: float
    connect_rate: float


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


@dataclass(frozen=True)
class ServerUse:
    """The server's and the machine's CPU over a span."""

    cpu: float
    waited: float
    machine_busy: float


def server_use(server: Server) -> ServerUse:
    return ServerUse(cpu_seconds(server.pid), loop_waited(server.pid), machine_busy())


def _level(
    answers: list[dict[str, Any]],
    window: float,
    before: ServerUse,
    after: ServerUse,
    failures: list[str],
) -> Level:
    def floats(key: str) -> npt.NDArray[np.float64]:
        chunks = [np.frombuffer(a[key], dtype=np.float64) for a in answers]
        return np.concatenate(chunks) if chunks else np.zeros(0)

    dropped: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for a in answers:
        dropped.update({int(k): v for k, v in a["closed"].items()})
        errors.update(a["errors"])
    acked = {n for a in answers for n in a["acked"]}
    messages = len(acked | {n for a in answers for n in a["seen"]})
    clients = sum(a["clients"] for a in answers)
    server_cpu = after.cpu - before.cpu
    clients_cpu = sum(a["cpu"] for a in answers)
    return Level(
        clients=clients,
        window=window,
        expected=messages * clients,
        messages=messages,
        latencies=floats("latencies"),
        frames=sum(a["frames"] for a in answers),
        sent=sum(a["sent"] for a in answers),
        acked=len(acked),
        errors=errors,
        dropped=dropped,
        ack_latencies=floats("ack_latencies"),
        server_cpu=server_cpu,
        server_waited=after.waited - before.waited,
        client_cpu=[a["cpu"] / a["elapsed"] for a in answers],
        client_lag_p99=[a["lag_p99"] for a in answers],
        others_cpu=max(0.0, after.machine_busy - before.machine_busy - server_cpu - clients_cpu),
        failures=failures,
    )


def _grow(peers: list[Peer], targets: list[int], connect_rate: float) -> tuple[bool, list[str]]:
    for peer, target in zip(peers, targets, strict=True):
        peer.ask("grow", target)
    failures: list[str] = []
    deflate = False
    for peer, target in zip(peers, targets, strict=True):
        # Longer than the process itself gives joining (see ClientProcess._grow).
        timeout = REPLY_TIMEOUT_S + 4 * target / connect_rate
        _, opened, failed, negotiated = peer.answer(timeout)
        failures += failed
        deflate = deflate or negotiated
        if opened < target:
            failures.append(f"only {opened} of {target} connections opened")
    return deflate, failures


def measure(server: Server, endpoint: Endpoint, cookies: list[str], plan: Plan) -> list[Level]:
    reader_spec = ClientSpec(endpoint, plan.connect_rate / plan.reader_processes)
    sender_spec = ClientSpec(endpoint, plan.connect_rate, tuple(cookies))
    levels: list[Level] = []
    with client_processes([sender_spec] + [reader_spec] * plan.reader_processes) as peers:
        sender, readers = peers[0], peers[1:]
        negotiated, failures = _grow([sender], [len(cookies)], sender_spec.connect_rate)
        if failures:
            raise RuntimeError(f"the senders could not join: {failures}")
        console.print(
            f"  {len(cookies)} senders joined; permessage-deflate "
            f"{'negotiated' if negotiated else 'not negotiated'}"
        )
        sender.ask("send", time.time() + 0.5, plan.rate)
        for n in plan.ladder:
            targets = _split(n - len(cookies), len(readers))
            _, failures = _grow(readers, targets, reader_spec.connect_rate)
            start = time.time() + plan.warmup
            end = start + plan.window
            for peer in peers:
                peer.ask("span", start, end)
            time.sleep(max(0.0, start - time.time()))
            before = server_use(server)
            time.sleep(max(0.0, end - time.time()))
            after = server_use(server)
            time.sleep(plan.grace)
            for peer in peers:
                peer.ask("report")
            level = _level([peer.answer() for peer in peers], plan.window, before, after, failures)
            levels.append(level)
            print_level(level)
            if level.clients < 0.9 * n:
                console.print(f"  [red]stopping: only {level.clients:,} of {n:,} clients joined")
                break
            if level.overloaded:
                console.print("  [red]stopping: a larger room would only be further behind")
                break
    return levels


# --- the report


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def print_level(level: Level) -> None:
    notes = []
    if level.overloaded:
        notes.append("[red]overloaded: what was sent in the span went unanswered[/red]")
    if level.clients_saturated:
        notes.append("[yellow]clients saturated[/yellow]")
    elif level.clients_late:
        notes.append("[yellow]clients late[/yellow]")
    if level.others_cpu / level.window >= SHARED_MACHINE:
        notes.append(
            f"[yellow]others used {level.others_cpu / level.window:.0%} of a core[/yellow]"
        )
    console.print(
        f"  {level.clients:5,} clients: {level.deliveries / level.window:7,.0f} deliveries/s, "
        f"server {level.server_cpu / level.window:4.0%} of a core = {level.per_core:6,.0f} per "
        f"core, p50 {ms(level.quantile(0.5))} ms, p99 {ms(level.quantile(0.99))} ms, "
        f"lost {level.lost:,} " + " ".join(notes)
    )
    for failure in level.failures:
        console.print(f"    [red]{failure}")


COLUMNS = (
    ("clients", "the room's connections in the span, senders included"),
    ("msg/s", "messages per second the server took (acknowledged, or delivered to anyone)"),
    ("deliv/s", "chat.message events received per second"),
    ("server CPU", "share of one core"),
    ("per core", "deliveries per server CPU second"),
    ("p50 ms", ""),
    ("p99 ms", ""),
    ("max ms", ""),
    ("lost", "expected minus received"),
    ("dropped", "clients the server closed (close code)"),
    ("ev/frame", "chat events per frame"),
    ("waited", "share of the span the server's event loop was ready to run but had no core"),
    ("clients CPU", "each client process's share of a core, the senders' first"),
    ("lag ms", "the client processes' worst p99 event-loop lag"),
    ("others", "CPU the machine's other processes used, in cores"),
    ("ack p50/p99", "chat.send to chat.ack, ms"),
)


def print_table(title: str, levels: list[Level]) -> None:
    table = Table(title=title, title_justify="left")
    for name, _ in COLUMNS:
        table.add_column(name, justify="right")
    for x in levels:
        dropped = ", ".join(f"{n} ({code})" for code, n in sorted(x.dropped.items())) or "0"
        clients_cpu = " ".join(f"{c:.0%}" for c in x.client_cpu)
        acks = [math.nan, math.nan]
        if len(x.ack_latencies):
            acks = [float(q) for q in np.quantile(x.ack_latencies, [0.5, 0.99])]
        table.add_row(
            f"{x.clients:,}",
            f"{x.messages / x.window:.1f}",
            f"{x.deliveries / x.window:,.0f}",
            f"{x.server_cpu / x.window:.0%}",
            f"{x.per_core:,.0f}",
            ms(x.quantile(0.5)),
            ms(x.quantile(0.99)),
            ms(float(x.latencies.max()) if x.deliveries else math.nan),
            f"{x.lost:,}",
            dropped,
            f"{x.deliveries / x.frames:.2f}" if x.frames else "-",
            f"{x.server_waited / x.window:.0%}",
            clients_cpu + (" [yellow]saturated[/yellow]" if x.clients_saturated else ""),
            ms(max(x.client_lag_p99)),
            f"{x.others_cpu / x.window:.2f}",
            "/".join(ms(q) for q in acks),
        )
    console.print(table)
    console.print("  " + "; ".join(f"{name}: {what}" for name, what in COLUMNS if what))
    for x in levels:
        if x.errors or x.sent != x.acked:
            errors = ", ".join(f"{n} {code}" for code, n in x.errors.items()) or "no error"
            console.print(
                f"  [yellow]{x.clients:,} clients: {x.sent} sent in the span, {x.acked} "
                f"acknowledged ({errors}; the rest not answered in time)"
            )


def verdict(compression: str, levels: list[Level], ladder: list[int]) -> str:
    if TARGET_CLIENTS not in ladder:
        return f"target not measured ({compression}): --clients has no {TARGET_CLIENTS:,}"
    at = next((x for x in levels if x.clients >= TARGET_CLIENTS * 0.98), None)
    if at is None:
        last = levels[-1]
        return (
            f"FAIL ({compression}): the ladder stopped before {TARGET_CLIENTS:,} clients; at "
            f"{last.clients:,} the server was "
            + ("overloaded" if last.overloaded else "too slow to let everyone join")
            + f" ({last.per_core:,.0f} deliveries/s per core, best "
            f"{max(x.per_core for x in levels):,.0f}; target {TARGET_PER_CORE:,})"
        )
    p99 = at.quantile(0.99)
    figures = (
        f"{at.clients:,} clients, {compression}: {at.per_core:,.0f} deliveries/s per core "
        f"(target {TARGET_PER_CORE:,}), p99 {ms(p99)} ms (target < {ms(TARGET_P99_S)}), "
        f"lost {at.lost:,}, dropped {sum(at.dropped.values())}"
    )
    caveat = " (clients late: p99 includes their own delay)" if at.clients_late else ""
    if at.overloaded:
        caveat = " (overloaded: the server fell behind, so only what came back in time counts)"
    return f"{'PASS' if at.passes() else 'FAIL'}: {figures}{caveat}"


# --- the command


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Target: {TARGET_PER_CORE:,} deliveries/s per core, p99 < "
        f"{TARGET_P99_S * 1000:.0f} ms at {TARGET_CLIENTS:,} clients.",
    )
    parser.add_argument(
        "--clients",
        default="100,500,1000,2000,5000",
        help="comma-separated room sizes measured in turn, senders included "
        "(default 100,500,1000,2000,5000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=25,
        help="chat messages per second, all senders together (default 25: at 2,000 clients "
        "that is the target's 50,000 deliveries/s)",
    )
    parser.add_argument(
        "--per-sender",
        type=float,
        default=1.0,
        help="messages per second one sender account sends; the senders are rate / per-sender "
        "accounts (default 1; above 1.5, the default chat limit, the limit is raised)",
    )
    parser.add_argument(
        "--window", type=float, default=15, help="seconds measured per level (default 15)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3,
        help="seconds between the last client joining and the span (default 3)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=3,
        help="seconds after the span that its messages may still arrive (default 3)",
    )
    parser.add_argument(
        "--compression",
        default="deflate",
        help="what the clients offer: deflate (permessage-deflate, as browsers do), none, or "
        "both comma-separated, each against a fresh server (default deflate)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=max(2, (os.cpu_count() or 2) - 1),
        help="processes holding the readers, besides the senders' own (default: cores - 1, "
        "leaving one for the server, and at least 2, so that no one client process is the "
        "bottleneck; on 2 cores they share the server's, as the waited and lag columns show)",
    )
    parser.add_argument(
        "--connect-rate",
        type=float,
        default=500,
        help="new connections per second while a level fills up (default 500)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 100 and 500 clients, 5 s spans, 2 s warm-up and grace",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.window, args.warmup, args.grace = "100,500", 5.0, 2.0, 2.0
    try:
        args.ladder = sorted(int(n) for n in args.clients.split(","))
    except ValueError:
        parser.error(f"--clients: not a list of numbers: {args.clients!r}")
    args.modes = [m.strip() for m in args.compression.split(",")]
    if any(m not in ("deflate", "none") for m in args.modes):
        parser.error("--compression: deflate, none, or both")
    if args.rate <= 0 or args.per_sender <= 0 or args.client_processes < 1:
        parser.error("--rate, --per-sender and --client-processes must be positive")
    args.senders = math.ceil(args.rate / args.per_sender)
    if args.ladder[0] < args.senders:
        parser.error(
            f"{args.senders} senders ({args.rate:g}/s at {args.per_sender:g}/s each) "
            f"do not fit in a room of {args.ladder[0]}"
        )
    return args


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(mode: str, args: argparse.Namespace) -> list[Level]:
    plan = Plan(
        ladder=args.ladder,
        rate=args.rate,
        senders=args.senders,
        reader_processes=args.client_processes,
        window=args.window,
        warmup=args.warmup,
        grace=args.grace,
        connect_rate=args.connect_rate,
    )
    with (
        tempfile.TemporaryDirectory(prefix="onair-chat-") as tmp,
        server_process(Path(tmp) / "var", chat_limit(args.per_sender)) as server,
    ):
        console.print(f"[bold]{mode}[/bold]: onair serve at {server.url} (pid {server.pid})")
        show_id, cookies = asyncio.run(prepare_room(server.url, args.senders))
        return measure(server, Endpoint(server.port, show_id, mode == "deflate"), cookies, plan)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM as Ctrl-C: the server and clients are stopped and the temporary data removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _raise_open_files(2 * args.ladder[-1] + 1024)  # the server's and clients' sockets
    console.print(
        f"chat: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"uvicorn {uvicorn.__version__}, websockets {websockets_version}; "
        f"{dt.date.today().isoformat()}; {args.rate:g} messages/s from {args.senders} senders, "
        f"{args.window:g} s spans after {args.warmup:g} s; {args.client_processes} reader "
        f"process(es) + 1 for the senders"
    )
    started = time.monotonic()
    results: dict[str, list[Level]] = {}
    try:
        for mode in args.modes:
            results[mode] = run(mode, args)
    except KeyboardInterrupt:
        console.print("interrupted: the server and clients are stopped")
        return 130
    for mode, levels in results.items():
        print_table(f"compression: {mode}, {args.rate:g} messages/s", levels)
    for mode, levels in results.items():
        console.print(verdict(mode, levels, args.ladder))
    console.print(f"the run took {time.monotonic() - started:.0f} s", style="dim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
