"""Listeners per core for the Icecast-style MP3 stream, against a real Icecast 2 in the same run.

Each server runs in its own process with one live 128 kb/s MP3 stream; this process connects
listeners over loopback, a few hundred a second, and once all are connected measures the
server's CPU (utime + stime from /proc/<pid>/stat, every thread) over a window while checking
that every listener received the full bitrate. A straight line through the (listeners, CPU)
points gives the cost of one more listener; listeners per core is one over that.

Servers compared (--modes):
  front    OnAir's app (FastAPI with an http middleware, like onair.app) behind StreamFront,
           under uvicorn: the stream writes straight to the connection (the recommended setup)
  mounted  the same app with stream_routes only mounted at /listen, so every write goes
           through the middleware stack and ASGI `send`
  asgi     stream_routes alone under uvicorn with the ASGI path forced (no transport hand-off)
  server   the dedicated asyncio server, onair.media.serve_streams
  icecast  Debian's icecast2 fed the same stream by ffmpeg -re (installed with apt-get if
           missing)

Run: .venv/bin/python bench/listeners_mp3.py --listeners 500,1000,2000 --modes front,icecast

The clients share the machine: on 2 cores, beyond about 3,000 listeners they (not the server)
become the limit and even Icecast stops being loss-free; such levels are left out of the fit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from machine import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame  # noqa: E402

BYTE_RATE = 128_000 // 8
MOUNT = "/listen/1.mp3"
MODES = ("front", "mounted", "asgi", "server", "icecast")
ICECAST_PASSWORD = "bench-source"


# --- the server side (run as a child process: --serve MODE --port N)


def _tone_studio(feed: object, stop: threading.Event) -> None:
    """Publishes a 440 Hz program in real time, as the studio's clock would."""
    from onair.media import ProgramFeed

    assert isinstance(feed, ProgramFeed)
    t0 = time.time()
    n = np.arange(FRAME_SAMPLES)
    i = 0
    while not stop.is_set():
        pts = i * FRAME_SAMPLES
        wave = (0.3 * np.sin(2 * np.pi * 440 * (pts + n) / SAMPLE_RATE)).astype(np.float32)
        feed.publish(ProgramFrame(pts, t0 + pts / SAMPLE_RATE, np.stack([wave, wave])))
        i += 1
        stop.wait(max(0.0, t0 + i * FRAME_SAMPLES / SAMPLE_RATE - time.time()))


def serve(mode: str, port: int, write_interval: float) -> None:
    import uvicorn
    from fastapi import FastAPI, Request, Response
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from onair.media import (
        ProgramFeed,
        StationInfo,
        StreamFront,
        StreamSettings,
        serve_streams,
        stream_routes,
    )

    feed = ProgramFeed(1, StationInfo("Bench FM", "Test", "listeners_mp3 bench"))
    settings = StreamSettings(write_interval=write_interval, transport_handoff=mode != "asgi")
    stop = threading.Event()
    threading.Thread(target=_tone_studio, args=(feed, stop), daemon=True).start()

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == 1 else None

    def onair_like_app() -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def passthrough(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            return await call_next(request)

        app.mount("/listen", stream_routes(lookup, settings=settings))
        return app

    import uvloop  # what uvicorn's loop="auto" picks

    if mode == "server":

        async def main() -> None:
            server = await serve_streams(lookup, "127.0.0.1", port, settings=settings)
            print("READY", flush=True)
            async with server:
                await server.serve_forever()

        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(main())
        return
    app: object
    if mode == "front":
        app = StreamFront(onair_like_app(), lookup, settings=settings)
    elif mode == "mounted":
        app = onair_like_app()
    else:
        app = Starlette(routes=[Mount("/listen", stream_routes(lookup, settings=settings))])
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        lifespan="off",
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        print("READY", flush=True)

    async def main_uvicorn() -> None:
        await asyncio.gather(server.serve(), announce())

    with contextlib.suppress(KeyboardInterrupt):  # how the bench stops it
        uvloop.run(main_uvicorn())


# --- the peers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Peer:
    name: str
    pid: int
    port: int


@contextlib.contextmanager
def onair_server(mode: str, write_interval: float) -> Iterator[Peer]:
    port = _free_port()
    args = [sys.executable, __file__, "--serve", mode, "--port", str(port)]
    args += ["--write-interval", str(write_interval)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"{mode} server did not start")
        yield Peer(mode, proc.pid, port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ICECAST_XML = """<icecast>
  <limits>
    <clients>{clients}</clients><sources>2</sources>
    <queue-size>524288</queue-size><burst-size>65535</burst-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
  </limits>
  <authentication>
    <source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir><logdir>{logdir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel>
  </logging>
  <security><chroot>0</chroot>{changeowner}</security>
</icecast>
"""


def ensure_icecast() -> str:
    found = shutil.which("icecast2")
    if found:
        return found
    print("icecast2 not found: installing Debian's package", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "icecast2"], check=True, env=env)
    found = shutil.which("icecast2")
    if not found:
        raise RuntimeError("icecast2 is still missing after apt-get install")
    return found


@contextlib.contextmanager
def icecast_server(max_clients: int) -> Iterator[Peer]:
    binary = ensure_icecast()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-icecast-") as tmp:
        Path(tmp).chmod(0o755)  # icecast drops to nobody and must still reach its logdir
        logdir = Path(tmp) / "log"
        logdir.mkdir()
        changeowner = ""
        if os.geteuid() == 0:  # icecast refuses to run as root without dropping privileges
            shutil.chown(logdir, "nobody", "nogroup")
            changeowner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        config = Path(tmp) / "icecast.xml"
        config.write_text(
            ICECAST_XML.format(
                clients=max_clients + 10,
                password=ICECAST_PASSWORD,
                port=port,
                logdir=logdir,
                changeowner=changeowner,
            )
        )
        ice = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        source = None
        try:
            _wait_port(port)
            source = subprocess.Popen(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-re",
                    "-f",
                    "lavfi",
                    "-i",
                    f"sine=frequency=440:sample_rate={SAMPLE_RATE}",
                    "-ac",
                    "2",
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    "128k",
                    "-content_type",
                    "audio/mpeg",
                    "-f",
                    "mp3",
                    f"icecast://source:{ICECAST_PASSWORD}@127.0.0.1:{port}{MOUNT}",
                ],
                stdin=subprocess.DEVNULL,
            )
            time.sleep(2)  # the source connects and Icecast fills its burst buffer
            yield Peer("icecast", ice.pid, port)
        finally:
            for proc in (source, ice):
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


# --- the listeners


class Listener(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.received = 0
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


@dataclass
class Level:
    listeners: int
    cpu: float
    """Fraction of one core the server used."""
    min_rate: float
    median_rate: float
    lost: int

    @property
    def loss_free(self) -> bool:
        return self.lost == 0 and self.min_rate >= 0.97 * BYTE_RATE


async def measure(peer: Peer, levels: list[int], window: float, rate: float) -> list[Level]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {MOUNT} HTTP/1.1\r\nHost: 127.0.0.1:{peer.port}\r\n"
        "User-Agent: listeners-bench\r\n\r\n"
    ).encode()
    listeners: list[Listener] = []
    results: list[Level] = []
    for target in levels:
        while len(listeners) < target:
            batch = min(target - len(listeners), max(1, int(rate / 10)))
            for _ in range(batch):
                listener = Listener(request)
                await loop.create_connection(lambda lst=listener: lst, "127.0.0.1", peer.port)
                listeners.append(listener)
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # past everyone's burst-on-connect
        before = [x.received for x in listeners]
        cpu0, own0, t0 = cpu_seconds(peer.pid), cpu_seconds(os.getpid()), time.monotonic()
        await asyncio.sleep(window)
        cpu1, own1, t1 = cpu_seconds(peer.pid), cpu_seconds(os.getpid()), time.monotonic()
        elapsed = t1 - t0
        rates = [(x.received - b) / elapsed for x, b in zip(listeners, before, strict=True)]
        level = Level(
            listeners=target,
            cpu=(cpu1 - cpu0) / elapsed,
            min_rate=min(rates),
            median_rate=statistics.median(rates),
            lost=sum(x.closed for x in listeners),
        )
        results.append(level)
        print(
            f"  {peer.name:8} {target:5} listeners: server {level.cpu * 100:6.2f} % of a core, "
            f"per listener {level.min_rate / 1000:.1f}-{level.median_rate / 1000:.1f} kB/s "
            f"(min-median), {level.lost} lost {'ok' if level.loss_free else 'NOT LOSS-FREE'}; "
            f"bench clients {(own1 - own0) / elapsed * 100:.0f} % of a core",
            flush=True,
        )
        if not level.loss_free:
            break
    for listener in listeners:
        if listener.transport is not None:
            listener.transport.abort()
    await asyncio.sleep(0.5)
    return results


def per_listener(levels: list[Level]) -> tuple[float, float] | None:
    """Least-squares (cost per listener, fixed cost) over the loss-free levels, if two."""
    good = [x for x in levels if x.loss_free]
    if len(good) < 2:
        return None
    slope, intercept = np.polyfit([x.listeners for x in good], [x.cpu for x in good], 1)
    return float(slope), float(intercept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--listeners",
        default="250,1000,2000",
        help="comma-separated listener counts measured in turn (default 250,1000,2000)",
    )
    parser.add_argument("--window", type=float, default=15, help="seconds measured per level")
    parser.add_argument(
        "--connect-rate", type=float, default=200, help="new listeners per second (default 200)"
    )
    parser.add_argument(
        "--modes",
        default="front,server,icecast",
        help=f"comma-separated servers to compare, from {','.join(MODES)}",
    )
    parser.add_argument(
        "--write-interval",
        type=float,
        default=0.1,
        help="OnAir's seconds of audio per socket write (default 0.1: four MP3 frames)",
    )
    parser.add_argument("--serve", choices=MODES[:-1], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.write_interval)
        return

    levels = sorted(int(n) for n in args.listeners.split(","))
    modes = [m.strip() for m in args.modes.split(",")]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}")
    print(
        f"listeners_mp3: {os.cpu_count()} cores, {levels} listeners, {args.window:g} s windows, "
        f"write interval {args.write_interval:g} s",
        flush=True,
    )
    import uvloop

    summary: dict[str, tuple[float, float] | None] = {}
    for mode in modes:
        context = (
            icecast_server(levels[-1])
            if mode == "icecast"
            else onair_server(mode, args.write_interval)
        )
        with context as peer:
            results = uvloop.run(measure(peer, levels, args.window, args.connect_rate))
        summary[mode] = per_listener(results)
    print("\nserver    % of a core per listener   listeners per core   fixed cost")
    for mode, fit in summary.items():
        if fit is None:
            print(f"{mode:8}  n/a: fewer than two loss-free levels (a clients-bound machine?)")
            continue
        slope, intercept = fit
        print(
            f"{mode:8}  {slope * 100:10.4f} %            {1 / slope:10.0f}           "
            f"{intercept * 100:5.2f} %"
        )
    icecast = summary.get("icecast")
    if icecast is not None:
        for mode, fit in summary.items():
            if mode != "icecast" and fit is not None:
                print(f"{mode} / icecast listeners per core: {icecast[0] / fit[0]:.2f}")


if __name__ == "__main__":
    main()
