"""WebRTC (WHEP) listeners per core, and time to first audio for a WHEP listener.

The server runs in its own process: OnAir's WebRTC routes (`onair.media.whep`) under uvicorn
(uvloop, as `onair serve` runs), with a show whose program is 1 s of 440 Hz encoded to Opus once
and looped, one packet per 20 ms. This process is the listeners: aiortc peer connections that
POST a WHEP offer and do ICE and DTLS like a browser, then count the SRTP packets arriving on
their socket without decrypting them (the RTP header is in clear), so the listeners' own CPU
stays small and out of the figure. Listener 0 stays a full aiortc receiver that decodes the
audio, which is checked for 440 Hz at the end.

At each level (--levels) it waits until every listener is being sent to, then measures the
server's CPU (utime + stime from /proc/<pid>/stat, all threads) over a window while checking
delivery: every listener must receive 50 packets a second with no sequence gaps (loss-free), and
the show's packets must leave within 20 ms of their time (on time). On shared cores other work
can hold the server up; the time it spent ready to run but waiting for a core (schedstat) is
printed for each level, so a late level can be told from a slow server. A straight line
through the (listeners, CPU) points of the good levels gives the cost of one more listener;
listeners per core is one over that. CPU per packet delivered to one listener is printed too:
it holds even at a level where the server fell behind.

Time to first audio is from the start of a listener's offer to the first RTP packet on its
socket, median of --joins sequential joins, on the idle server and again under the largest
load.

    .venv/bin/python bench/listeners_webrtc.py                      # lean fan-out, 250..1500
    .venv/bin/python bench/listeners_webrtc.py --fanout sender --levels 100,200,300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from machine import cpu_times, run_queue_wait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE  # noqa: E402

SHOW = 1
PACKET_RATE = 50
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


# --- the server (a child process)


@dataclass(frozen=True, slots=True)
class Packet:
    data: bytes
    pts: int


@dataclass
class GcPauses:
    """The longest pause of Python's cyclic garbage collector, per generation."""

    longest: dict[int, float] = field(default_factory=dict)
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.longest[generation] = max(self.longest.get(generation, 0.0), pause)


@dataclass
class LoopedTone:
    """The show's program: 440 Hz encoded to Opus once, looped in real time."""

    packets_once: list[bytes]
    max_lag: float = 0.0
    late: int = 0
    paused: bool = False
    """While paused the program holds its packets back: what the server spends then is what
    its listeners cost without any audio (ICE consent checks, RTCP, timers)."""

    async def packets(self) -> AsyncIterator[Packet]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while True:
            due = start + i * FRAME_SAMPLES / SAMPLE_RATE
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self.paused:
                i += 1
                continue
            # How late the packet leaves: the fan-out of the previous packet delays this one.
            lag = loop.time() - due
            self.max_lag = max(self.max_lag, lag)
            self.late += lag > 0.020
            yield Packet(self.packets_once[i % len(self.packets_once)], i * FRAME_SAMPLES)
            i += 1


def encode_tone(freq: float = 440.0, seconds: float = 1.0) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = TIME_BASE
    codec.bit_rate = 64_000
    out: list[bytes] = []
    for i in range(int(seconds * PACKET_RATE)):
        t = (np.arange(FRAME_SAMPLES) + i * FRAME_SAMPLES) / SAMPLE_RATE
        mono = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        out.extend(bytes(p) for p in codec.encode(frame))
    return out


def serve(port: int, fanout: str, loop_name: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    from onair.errors import forbidden, install_error_handlers
    from onair.media.webrtc import ShowMedia, WebRtcService
    from onair.media.whep import webrtc_router

    program = LoopedTone(encode_tone())
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    service = WebRtcService(fanout=fanout, connect_timeout=30.0)  # type: ignore[arg-type]

    async def lookup(show_id: int) -> ShowMedia | None:
        return ShowMedia(program=program) if show_id == SHOW else None

    def nobody() -> str:
        raise forbidden("no hosts in this bench")

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(webrtc_router(service, lookup, nobody))

    @app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        hub = service.existing_hub(SHOW)
        return {
            "listeners": 0 if hub is None else hub.listener_count,
            "sending": 0 if hub is None else hub.sending_count,
            "max_lag_ms": program.max_lag * 1000,
            "late": program.late,
            "gc_ms": {str(g): p * 1000 for g, p in sorted(pauses.longest.items())},
        }

    @app.post("/bench/pause")
    async def pause(paused: bool) -> dict[str, bool]:
        program.paused = paused
        return {"paused": paused}

    @app.post("/bench/reset")
    async def reset() -> dict[str, str]:
        program.max_lag, program.late = 0.0, 0
        pauses.longest.clear()
        return {}

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        print("READY", flush=True)

    async def main() -> None:
        await asyncio.gather(server.serve(), announce())

    with contextlib.suppress(KeyboardInterrupt):  # how the bench stops it
        if loop_name == "uvloop":
            import uvloop

            uvloop.run(main())
        else:
            asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    pid: int
    url: str


@contextlib.contextmanager
def server_process(fanout: str, loop_name: str) -> Iterator[Server]:
    port = _free_port()
    args = [sys.executable, __file__, "--serve", "--port", str(port), "--fanout", fanout]
    args += ["--loop", loop_name]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError("the WebRTC server did not start")
        yield Server(proc.pid, f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the listeners (this process)


@dataclass
class RtpCounter:
    """Counts a listener's RTP packets and sequence gaps from the clear-text header."""

    started: float
    first_at: float | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    received: int = 0
    highest: int = -1
    """Extended (unwrapped) highest sequence number seen."""

    def datagram(self, data: bytes) -> None:
        seq = (data[2] << 8) | data[3]
        if self.highest < 0:
            self.first_at = time.perf_counter()
            self.arrived.set()
            self.highest = seq
        else:
            step = (seq - self.highest) & 0xFFFF
            if step < 0x8000:
                self.highest += step
        self.received += 1


def _is_rtp(data: bytes) -> bool:
    # RTP and RTCP both start 0b10; RTCP's packet types take 192-223 in the second byte.
    return len(data) >= 12 and 0x80 <= data[0] < 0xC0 and not 192 <= data[1] <= 223


def count_rtp_on_sockets(pc: RTCPeerConnection, counter: RtpCounter) -> None:
    """Counts RTP before aiortc sees it; STUN, DTLS and RTCP still go to aiortc."""
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in connection._protocols:
        original = protocol.datagram_received

        def datagram_received(data: bytes, addr: Any, original: Any = original) -> None:
            if _is_rtp(data):
                counter.datagram(data)
            else:
                original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]


@dataclass
class Listener:
    pc: RTCPeerConnection
    counter: RtpCounter
    location: str = ""
    heard: list[np.ndarray[Any, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


async def _decode(track: MediaStreamTrack, heard: list[np.ndarray[Any, Any]]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        heard.append(frame.to_ndarray().reshape(-1, 2).mean(axis=1) / 32768.0)


async def join(http: httpx.AsyncClient, *, decode: bool = False) -> Listener:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    listener = Listener(pc, RtpCounter(time.perf_counter()))
    if decode:

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            listener.tasks.add(asyncio.ensure_future(_decode(track, listener.heard)))

    await pc.setLocalDescription(await pc.createOffer())
    if not decode:
        count_rtp_on_sockets(pc, listener.counter)
    r = await http.post(
        f"/api/v1/shows/{SHOW}/whep",
        content=pc.localDescription.sdp,
        headers={"content-type": "application/sdp"},
    )
    if r.status_code != 201:
        await pc.close()
        raise RuntimeError(f"WHEP POST answered {r.status_code}: {r.text}")
    listener.location = r.headers["location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    return listener


async def leave(http: httpx.AsyncClient, listener: Listener) -> None:
    with contextlib.suppress(httpx.HTTPError):
        await http.delete(listener.location)
    await listener.pc.close()
    for task in listener.tasks:
        task.cancel()


async def server_stats(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get("/bench/stats")
    stats: dict[str, Any] = r.json()
    return stats


async def time_to_first_audio(url: str, joins: int) -> list[float]:
    """Joins one at a time; seconds from the start of each offer to its first RTP packet."""
    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(joins):
            listener = await join(http)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.counter.arrived.wait(), 10)
            if listener.counter.first_at is not None:
                times.append(listener.counter.first_at - listener.counter.started)
            await leave(http, listener)
    return times


async def time_to_first_audio_apart(url: str, joins: int) -> list[float]:
    """`time_to_first_audio` in a process of its own, so the joining listener is not slowed
    by this process counting everyone else's packets (a browser would not be)."""
    args = [sys.executable, __file__, "--first-audio", url, "--joins", str(joins)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    times: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    return times


def band_db(signal: np.ndarray[Any, Any], freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    band = spectrum[(freqs > freq - 30) & (freqs < freq + 30)].sum()
    return float(10 * np.log10(band / spectrum.sum() + 1e-30))


@dataclass
class Level:
    listeners: int
    cpu: float
    """Fraction of one core the server used."""
    system: float
    """The part of `cpu` spent in the kernel: sending, and on loopback also delivering to the
    listener's socket and waking the listener, which a real network does elsewhere."""
    min_rate: float
    median_rate: float
    lost: int
    max_lag_ms: float
    late: int
    delivered: float
    """Packets a second that reached the counted listeners, all together."""
    gc_ms: dict[str, float]
    """The server's longest garbage-collector pause per generation, in the window."""
    waited: float
    """Fraction of the window the server was ready to run but waited for a core."""

    @property
    def us_per_packet(self) -> float:
        """Server CPU per packet delivered to one listener: holds even when the server fell
        behind (or was starved by other processes), where CPU per second does not."""
        return self.cpu / self.delivered * 1e6 if self.delivered else float("inf")

    @property
    def loss_free(self) -> bool:
        """Every listener got every packet, at the full rate."""
        return self.lost == 0 and self.min_rate >= 0.97 * PACKET_RATE

    @property
    def on_time(self) -> bool:
        """No packet left more than 20 ms after its time."""
        return self.late == 0


async def measure_level(
    http: httpx.AsyncClient, server: Server, listeners: list[Listener], window: float
) -> Level:
    target = len(listeners)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = await server_stats(http)
        arrived = sum(1 for x in listeners[1:] if x.counter.received > 0)
        if stats["sending"] == target and arrived == target - 1:
            break
        await asyncio.sleep(0.2)
    else:
        print(f"  only {stats['sending']} of {target} listeners are being sent to", flush=True)
    await asyncio.sleep(2)  # joins' DTLS handshakes are done; let the loop settle
    counted = listeners[1:]
    before = [(x.counter.received, x.counter.highest) for x in counted]
    await http.post("/bench/reset")
    cpu0, wait0, t0 = cpu_times(server.pid), run_queue_wait(server.pid), time.monotonic()
    await asyncio.sleep(window)
    cpu1, wait1, t1 = cpu_times(server.pid), run_queue_wait(server.pid), time.monotonic()
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    stats = await server_stats(http)
    elapsed = t1 - t0
    rates, lost = [], 0
    for x, (received, highest) in zip(counted, before, strict=True):
        got = x.counter.received - received
        rates.append(got / elapsed)
        lost += max(0, (x.counter.highest - highest) - got)
    return Level(
        listeners=target,
        cpu=(user + system) / elapsed,
        system=system / elapsed,
        min_rate=min(rates),
        median_rate=statistics.median(rates),
        lost=lost,
        max_lag_ms=stats["max_lag_ms"],
        late=stats["late"],
        delivered=sum(rates),
        gc_ms=stats["gc_ms"],
        waited=(wait1 - wait0) / elapsed,
    )


async def background_cost(http: httpx.AsyncClient, server: Server, window: float) -> float:
    """The server's CPU (fraction of a core) with everyone connected but no audio sent."""
    await http.post("/bench/pause", params={"paused": True})
    await asyncio.sleep(1)
    cpu0, t0 = cpu_times(server.pid), time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = cpu_times(server.pid), time.monotonic()
    await http.post("/bench/pause", params={"paused": False})
    return (sum(cpu1) - sum(cpu0)) / (t1 - t0)


def gc_text(pauses: dict[str, float]) -> str:
    return ", ".join(f"gen{g} {ms:.0f} ms" for g, ms in pauses.items()) or "none"


def per_listener(levels: list[Level]) -> tuple[float, float]:
    """Least-squares (cost per listener, fixed cost) over the loss-free levels."""
    good = [x for x in levels if x.loss_free and x.on_time] or levels[:1]
    if len(good) < 2:
        return good[0].cpu / good[0].listeners, 0.0
    slope, intercept = np.polyfit([x.listeners for x in good], [x.cpu for x in good], 1)
    return float(slope), float(intercept)


async def run_mode(fanout: str, args: argparse.Namespace) -> None:
    levels = sorted(int(x) for x in args.levels.split(","))
    print(f"fanout={fanout} (server loop {args.loop})", flush=True)
    with server_process(fanout, args.loop) as server:
        limits = httpx.Limits(max_connections=args.concurrency * 2)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
            idle_ttfa = await time_to_first_audio_apart(server.url, args.joins)
            listeners = [await join(http, decode=True)]
            results: list[Level] = []
            gate = asyncio.Semaphore(args.concurrency)

            async def one() -> Listener:
                async with gate:
                    return await join(http)

            for target in levels:
                started = time.monotonic()
                listeners += await asyncio.gather(*(one() for _ in range(target - len(listeners))))
                joined_in = time.monotonic() - started
                level = await measure_level(http, server, listeners, args.window)
                results.append(level)
                print(
                    f"  {target:5} listeners (joined in {joined_in:4.1f} s): server "
                    f"{level.cpu * 100:5.1f} % of a core ({level.system * 100:.1f} % kernel); "
                    f"per listener {level.min_rate:.1f}-"
                    f"{level.median_rate:.1f} packets/s (min-median), {level.lost} lost, "
                    f"packets up to {level.max_lag_ms:.1f} ms late ({level.late} over 20 ms); "
                    f"{level.us_per_packet:.1f} us of CPU per listener-packet; longest GC "
                    f"pause {gc_text(level.gc_ms)}; waited for a core "
                    f"{level.waited * 100:.1f} % of the time: "
                    f"{'loss-free' if level.loss_free else 'NOT LOSS-FREE'}, "
                    f"{'on time' if level.on_time else 'LATE'}",
                    flush=True,
                )
                if not (level.loss_free and level.on_time):
                    break
            loaded_ttfa = await time_to_first_audio_apart(server.url, args.joins)
            quiet = await background_cost(http, server, args.window)
            audio = np.concatenate(listeners[0].heard)[-SAMPLE_RATE:]
            audio_ok = len(audio) == SAMPLE_RATE and band_db(audio, 440.0) > -1.0
            await asyncio.gather(*(leave(http, x) for x in listeners))

    print(
        f"  with the program paused, {len(listeners)} listeners cost the server "
        f"{quiet * 100:.1f} % of a core ({quiet / len(listeners) * 100:.4f} % each): ICE "
        "consent checks, their RTCP, timers"
    )
    slope, fixed = per_listener(results)
    us = statistics.median(x.us_per_packet for x in results)
    good = (x for x in results if x.loss_free and x.on_time)
    best = max(good, key=lambda x: x.listeners, default=None)
    print(f"  listener 0 decoded 440 Hz: {'yes' if audio_ok else 'NO'}")
    print(
        f"  CPU per listener-packet (median of levels) {us:.1f} us: "
        f"{1e6 / (us * PACKET_RATE):,.0f} listeners per core at 50 packets/s"
    )
    print(
        f"  cost per listener {slope * 100:.4f} % of a core (fixed {fixed * 100:.1f} %): "
        f"{1 / slope:,.0f} listeners per core"
    )
    if best is not None:
        print(
            f"  largest loss-free, on-time level {best.listeners} listeners at "
            f"{best.cpu * 100:.1f} % of a core: {best.listeners / best.cpu:,.0f} listeners "
            "per core, all costs included"
        )
    for name, times in (("idle server", idle_ttfa), (f"{levels[-1]} listeners", loaded_ttfa)):
        if times:
            print(
                f"  time to first audio ({name}): median {statistics.median(times) * 1000:.0f} ms, "
                f"max {max(times) * 1000:.0f} ms over {len(times)} joins"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prints server CPU per level, listeners per core and time to first audio.",
    )
    parser.add_argument("--levels", default="250,500,1000,1500", help="listener counts to measure")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per level")
    parser.add_argument("--fanout", default="lean", help="lean, sender or both (lean,sender)")
    parser.add_argument("--joins", type=int, default=20, help="joins timed for first audio")
    parser.add_argument("--concurrency", type=int, default=8, help="WHEP joins in flight")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--first-audio", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.fanout, args.loop)
        return
    if args.first_audio:
        print(json.dumps(asyncio.run(time_to_first_audio(args.first_audio, args.joins))))
        return
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}")
    for fanout in args.fanout.split(","):
        asyncio.run(run_mode(fanout, args))


if __name__ == "__main__":
    main()
