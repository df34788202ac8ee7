"""Mouth-to-ear delay between a show's host and an on-air caller, over OnAir's WebRTC voice lines.

The server is `onair serve` in its own process, on 127.0.0.1, with a fresh database holding one
quiet tone song (so the auto-DJ has something to play; the music fader is also set to -60 dB so
the clicks stand out). This process is the host and the caller, each an aiortc peer connection
with its own cookies, going through the real flow: sign up, the host creates a show and goes
live, opens their voice line; the caller calls in, the host screens them, the caller opens their
line and the host puts them on air. Each line sends a microphone and receives its mix-minus
return: the caller hears the host, the host hears the caller.

Each microphone sends a loud 5 ms Hann-windowed tone burst (a click) every 0.7 s, the host's
at 800 and 1400 Hz in turn, the caller's at 2600 and 3800 Hz. A click is sent when the 20 ms
frame holding it is handed to aiortc (the track's recv() returns it) plus its offset in the
frame. Each side records when every decoded frame of its return comes out of aiortc, and finds
the clicks in that audio with a matched filter in each tone's band; a click is heard at its
frame's time plus its offset in the frame. Delay = heard - sent, for each click sent in the
measured span (after --warmup s on air), matched to the first click of its tone heard within
0.6 s after it; a click with none is lost (with two tones taking turns, a click later than the
spacing is lost, not taken for the next one). Both ends use the same convention (a frame's audio
plays from the moment the frame is handed over), so a real microphone's capture frame (20 ms)
and a real speaker's output buffer are not in the figures.

Also printed: when the RTP packet carrying each click reached the listening client's aiortc
receiver (before its jitter buffer and decoder): a browser has a receive buffer too, usually
smaller, so that column is what the server and the network cost apart from the listening
client. The median of each 5 s in turn shows a delay that changes during the call; the longest
gap between frames of a return shows a stall. The server's CPU over the measured span, and how
long its threads waited for a core (schedstat), tell a loaded machine from a slow path.

    .venv/bin/python bench/conversation.py
    .venv/bin/python bench/conversation.py --seconds 60 --warmup 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import fractions
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiortc
import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from machine import cpu_model, cpu_seconds, run_queue_wait
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.catalog.audiofile import probe_audio_file  # noqa: E402
from onair.catalog.service import CatalogWriter, TrackInput  # noqa: E402
from onair.clock import SystemClock  # noqa: E402
from onair.db.base import make_engine, make_sessionmaker  # noqa: E402
from onair.db.migrate import upgrade  # noqa: E402
from onair.settings import Settings  # noqa: E402
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE  # noqa: E402
from onair.studio.limiter import DEFAULT_LOOKAHEAD_S  # noqa: E402
from onair.studio.voice import DEFAULT_TARGET_LATENCY_S  # noqa: E402

FRAME_S: Final = FRAME_SAMPLES / SAMPLE_RATE
# Two tones each, taking turns, so a click that comes later than the spacing is not taken for
# the next one; 600 Hz apart, a tone's matched filter hears the other at under -30 dB.
HOST_TONES: Final = (800.0, 1400.0)
CALLER_TONES: Final = (2600.0, 3800.0)
CLICK_SAMPLES: Final = 240  # 5 ms
CLICK_LEVEL: Final = 0.5
CLICK_EVERY_S: Final = 0.7
HEARD_AT: Final = 0.3
"""A click is heard where its band's amplitude passes this share of the level it was sent at."""
MATCH_WINDOW_S: Final = 0.6
SEPARATE_S: Final = 0.1
"""Detections closer than this are one click (Opus rings a little after a burst)."""
TARGET_MEDIAN_S: Final = 0.150
TARGET_P95_S: Final = 0.250
MUSIC_HZ: Final = 440.0
MUSIC_LEVEL_DB: Final = -60.0
TIMELINE_S: Final = 5.0
OUTPUT_WIDTH: Final = 140
START_TIMEOUT_S: Final = 60.0
LINE_TIMEOUT_S: Final = 10.0
PR_SET_PDEATHSIG: Final = 1

console = Console(stderr=True)
Mono = npt.NDArray[np.float64]


# --- the machine


@dataclass(frozen=True)
class Usage:
    cpu: float
    waited: float

    @classmethod
    def now(cls, pid: int) -> Usage:
        return cls(cpu_seconds(pid), run_queue_wait(pid))

    def share_since(self, before: Usage, elapsed: float) -> Usage:
        """Fractions of `elapsed` spent on a core and waiting for one."""
        return Usage((self.cpu - before.cpu) / elapsed, (self.waited - before.waited) / elapsed)


# --- the server (a child process)


def write_song(path: Path, seconds: float, level: float) -> None:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    mono = level * np.sin(2 * np.pi * MUSIC_HZ * t)
    pcm = (np.vstack([mono, mono]) * 32767).astype(np.int16).T.reshape(1, -1)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = 0
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


async def seed_song(url: str, path: Path) -> None:
    info = probe_audio_file(path)
    song = TrackInput(
        source="bench",
        source_key="bench:quiet-a",
        title="Quiet A",
        artists=("Bench Tones",),
        genres=("Test",),
        duration_s=info.duration_s,
        loudness_lufs=info.loudness_lufs,
        audio_path=str(path),
    )
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        await CatalogWriter(db, SystemClock()).write([song])
        await db.commit()
    await engine.dispose()


def prepare_data_dir(root: Path, song_seconds: float) -> Path:
    """A migrated database with one quiet tone song: `onair serve` then makes no demo catalog."""
    data_dir = root / "var"
    settings = Settings(data_dir=data_dir)
    data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    song = root / "quiet-a.flac"
    write_song(song, song_seconds, 0.05)
    asyncio.run(seed_song(settings.resolved_database_url, song))
    return data_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # If this process is killed outright, the server must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class Server:
    pid: int
    url: str


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/catalog/search", params={"q": "quiet"}).is_success:
                return
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"onair serve did not start:\n{tail}")


@contextlib.contextmanager
def server_process(data_dir: Path) -> Iterator[Server]:
    """`onair serve` on 127.0.0.1, stopped (SIGINT, then SIGKILL) however the bench ends."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env |= {"ONAIR_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "onair", "serve", "--no-demo"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
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
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(proc, url, log)
        yield Server(proc.pid, url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the microphones and the ears (this process)


def click_shape() -> npt.NDArray[np.float64]:
    return np.hanning(CLICK_SAMPLES)


@dataclass(frozen=True)
class Sent:
    at: float
    """When the click's first sample was handed to aiortc."""
    tone: float


class ClickTrack(MediaStreamTrack):
    """A microphone paced in real time (20 ms s16 stereo frames) that clicks every 0.7 s,
    alternating between its two `tones`, and is silent between; `sent` holds every click."""

    kind = "audio"

    def __init__(self, tones: tuple[float, float]) -> None:
        super().__init__()
        self.tones = tones
        self.sent: list[Sent] = []
        self._every = round(CLICK_EVERY_S * SAMPLE_RATE)
        self._first = self._every // 2
        self._i = 0
        self._start: float | None = None
        n = np.arange(CLICK_SAMPLES) / SAMPLE_RATE
        self._clicks = [CLICK_LEVEL * click_shape() * np.sin(2 * np.pi * f * n) for f in tones]

    def _samples(self, begin: int) -> tuple[Mono, list[tuple[int, float]]]:
        """The frame starting at sample `begin`, and (offset, tone) of each click starting in it."""
        end = begin + FRAME_SAMPLES
        mono = np.zeros(FRAME_SAMPLES)
        starts: list[tuple[int, float]] = []
        k = max(0, -(-(begin - CLICK_SAMPLES + 1 - self._first) // self._every))
        while (at := self._first + k * self._every) < end:
            click = self._clicks[k % 2]
            lo, hi = max(at, begin), min(at + CLICK_SAMPLES, end)
            mono[lo - begin : hi - begin] += click[lo - at : hi - at]
            if at >= begin:
                starts.append((at - begin, self.tones[k % 2]))
            k += 1
        return mono, starts

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._i * FRAME_S
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        begin = self._i * FRAME_SAMPLES
        mono, starts = self._samples(begin)
        pcm = (np.vstack([mono, mono]) * 32767).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = begin
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._i += 1
        handed = time.monotonic()
        self.sent.extend(Sent(handed + offset / SAMPLE_RATE, tone) for offset, tone in starts)
        return frame


@dataclass
class Ear:
    """One side's return: each decoded frame with when it came out of aiortc, and when the RTP
    packet of each timestamp reached the receiver (before its jitter buffer). Timestamps and
    pts count from the first packet and the first frame, which are the same audio."""

    frames: list[Mono] = field(default_factory=list)
    out_at: list[float] = field(default_factory=list)
    pts: list[int | None] = field(default_factory=list)
    packet_at: dict[int, float] = field(default_factory=dict)
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    _first_timestamp: int | None = None
    _first_pts: int | None = None

    async def listen(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            at = time.monotonic()
            assert isinstance(frame, av.AudioFrame)
            stereo = frame.to_ndarray().reshape(-1, len(frame.layout.channels)) / 32768.0
            self.frames.append(stereo.mean(axis=1))
            self.out_at.append(at)
            if frame.pts is not None and self._first_pts is None:
                self._first_pts = frame.pts
            first = self._first_pts
            self.pts.append(None if frame.pts is None or first is None else frame.pts - first)
            self.first_frame.set()

    def note_packets(self, receiver: RTCRtpReceiver) -> None:
        original = receiver._handle_rtp_packet

        async def handle(packet: Any, arrival_time_ms: int) -> None:
            if self._first_timestamp is None:
                self._first_timestamp = packet.timestamp
            timestamp = (packet.timestamp - self._first_timestamp) % 2**32
            self.packet_at.setdefault(timestamp, time.monotonic())
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    def longest_gap(self, span: tuple[float, float]) -> float:
        """The longest wait between two frames of the return within `span`."""
        at = np.array(self.out_at)
        at = at[(at >= span[0]) & (at < span[1])]
        return float(np.diff(at).max()) if len(at) > 1 else float("inf")


@dataclass(frozen=True)
class Heard:
    at: float
    """When the click came out of the listening client's aiortc receiver."""
    packet_at: float | None
    """When the RTP packet carrying it reached that receiver."""
    level: float


def heard_clicks(ear: Ear, tone: float) -> list[Heard]:
    """Clicks at `tone` in the ear's audio: a matched filter (the click's Hann window on a
    complex tone), its peaks above HEARD_AT of the sent level, one per SEPARATE_S."""
    if not ear.frames:
        return []
    audio = np.concatenate(ear.frames)
    starts = np.concatenate(([0], np.cumsum([len(f) for f in ear.frames])[:-1]))
    window = click_shape()
    probe = window * np.exp(2j * np.pi * tone * np.arange(CLICK_SAMPLES) / SAMPLE_RATE)
    level = 2 * np.abs(np.correlate(audio, probe, "valid")) / np.sum(window**2)
    above = np.flatnonzero(level > HEARD_AT * CLICK_LEVEL)
    if len(above) == 0:
        return []
    heard = []
    for group in np.split(above, np.flatnonzero(np.diff(above) > SEPARATE_S * SAMPLE_RATE) + 1):
        # The filter peaks where the probe lines up with the click, i.e. at the click's start.
        peak = int(group[np.argmax(level[group])])
        f = int(np.searchsorted(starts, peak, side="right")) - 1
        offset = (peak - starts[f]) / SAMPLE_RATE
        pts = ear.pts[f]
        packet_at = None if pts is None else ear.packet_at.get(pts)
        heard.append(
            Heard(
                at=ear.out_at[f] + offset,
                packet_at=None if packet_at is None else packet_at + offset,
                level=float(level[peak]),
            )
        )
    return heard


@dataclass(frozen=True)
class Click:
    sent_at: float
    delay: float
    to_socket: float | None
    """Sent to the RTP packet reaching the listening client: the server's path and the network."""
    level: float


@dataclass
class Direction:
    name: str
    sent: int = 0
    clicks: list[Click] = field(default_factory=list)
    longest_gap: float = 0.0
    """The longest wait between two frames of the listener's return."""
    echoes: int = 0
    """The speaker's own clicks found in their own return (mix-minus says: none)."""

    @property
    def delays(self) -> list[float]:
        return [c.delay for c in self.clicks]

    @property
    def lost(self) -> int:
        return self.sent - len(self.clicks)

    @property
    def median(self) -> float:
        return statistics.median(self.delays) if self.clicks else float("inf")

    @property
    def p95(self) -> float:
        return float(np.percentile(self.delays, 95)) if self.clicks else float("inf")

    @property
    def max(self) -> float:
        return max(self.delays, default=float("inf"))

    @property
    def to_socket(self) -> float | None:
        known = [c.to_socket for c in self.clicks if c.to_socket is not None]
        return statistics.median(known) if known else None

    @property
    def passed(self) -> bool:
        return self.median < TARGET_MEDIAN_S and self.p95 < TARGET_P95_S

    def medians_every(self, seconds: float, start: float) -> list[float | None]:
        """The median delay of the clicks sent in each `seconds` of the span, in order."""
        slices: dict[int, list[float]] = {}
        for c in self.clicks:
            slices.setdefault(int((c.sent_at - start) // seconds), []).append(c.delay)
        last = max(slices, default=-1)
        return [statistics.median(slices[i]) if i in slices else None for i in range(last + 1)]


def match(
    name: str, sent: Sequence[Sent], ear: Ear, tones: Sequence[float], span: tuple[float, float]
) -> Direction:
    """Each click sent in `span` against the first click of its tone heard within
    MATCH_WINDOW_S after it. With two tones taking turns, a click that comes later than the
    spacing is lost rather than taken for the next one."""
    result = Direction(name)
    for tone in tones:
        heard = heard_clicks(ear, tone)
        i = 0
        for click in sorted((s for s in sent if s.tone == tone), key=lambda s: s.at):
            if not span[0] <= click.at < span[1]:
                continue
            result.sent += 1
            while i < len(heard) and heard[i].at <= click.at:
                i += 1
            if i == len(heard) or heard[i].at > click.at + MATCH_WINDOW_S:
                continue
            h = heard[i]
            to_socket = None if h.packet_at is None else h.packet_at - click.at
            result.clicks.append(Click(click.at, h.at - click.at, to_socket, h.level))
            i += 1
    result.clicks.sort(key=lambda c: c.sent_at)
    return result


def echoes(ear: Ear, tones: Sequence[float], span: tuple[float, float]) -> int:
    """Clicks at the listener's own `tones` in their return, within `span`."""
    heard = [h for tone in tones for h in heard_clicks(ear, tone)]
    return sum(1 for h in heard if span[0] <= h.at < span[1] + MATCH_WINDOW_S)


# --- the conversation


@dataclass
class Side:
    """A person on a voice line: their cookies, their microphone and what they hear."""

    http: httpx.AsyncClient
    mic: ClickTrack
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    ear_packets: int = 2
    ear: Ear = field(default_factory=Ear)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        transceiver = self.pc.addTransceiver(self.mic, direction="sendrecv")
        # The ear: a browser's receiver (NetEq) adapts its buffer to the jitter it sees, 20-40
        # ms on a clean loopback; aiortc's fixed one holds 4 packets (80 ms). Set to what a
        # browser would hold here (private aiortc state, as the server sets its own).
        receiver = transceiver.receiver
        if hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
            receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(
                capacity=16, prefetch=self.ear_packets
            )
        self.ear.note_packets(receiver)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tasks.add(asyncio.ensure_future(self.ear.listen(track)))

    async def open_line(self, show_id: int) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await self.http.post(
            f"/api/v1/shows/{show_id}/studio/webrtc",
            content=self.pc.localDescription.sdp,
            headers={"content-type": "application/sdp"},
        )
        _expect(r, 201)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))

    async def hearing(self) -> None:
        """Waits for the first frame of the return: the line is up."""
        try:
            async with asyncio.timeout(LINE_TIMEOUT_S):
                await self.ear.first_frame.wait()
        except TimeoutError:
            raise RuntimeError("no return audio on the voice line") from None

    def prefetch(self) -> int | None:
        """Packets aiortc's receiver holds before decoding (private, read for the report)."""
        receiver = self.pc.getTransceivers()[0].receiver
        buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
        prefetch = getattr(buffer, "_prefetch", None)
        return prefetch if isinstance(prefetch, int) else None

    async def aclose(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await self.http.aclose()


def _expect(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise RuntimeError(
            f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text}"
        )


async def sign_up(url: str, name: str, tones: tuple[float, float], ear_packets: int) -> Side:
    http = httpx.AsyncClient(base_url=url, timeout=30)
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": "bench-password-1"},
    )
    _expect(r, 201)
    return Side(http, ClickTrack(tones), ear_packets=ear_packets)


@dataclass
class Run:
    host_to_caller: Direction
    caller_to_host: Direction
    span: tuple[float, float]
    server: Usage
    client: Usage
    prefetch: int | None

    @property
    def directions(self) -> tuple[Direction, Direction]:
        return self.host_to_caller, self.caller_to_host

    @property
    def passed(self) -> bool:
        return self.host_to_caller.passed and self.caller_to_host.passed


async def conversation(server: Server, seconds: float, warmup: float, ear_packets: int) -> Run:
    host = await sign_up(server.url, "benchhost", HOST_TONES, ear_packets)
    caller = await sign_up(server.url, "benchcaller", CALLER_TONES, ear_packets)
    try:
        return await _talk(server, host, caller, seconds, warmup)
    finally:
        await host.aclose()
        await caller.aclose()


async def _talk(server: Server, host: Side, caller: Side, seconds: float, warmup: float) -> Run:
    r = await host.http.post("/api/v1/shows", json={"title": "Bench Call-in"})
    _expect(r, 201)
    show_id = r.json()["id"]
    show = f"/api/v1/shows/{show_id}"
    found = (await host.http.get("/api/v1/catalog/search", params={"q": "quiet"})).json()
    _expect(await host.http.post(f"{show}/queue", json={"track_id": found["tracks"][0]["id"]}), 201)
    _expect(await host.http.post(f"{show}/live"), 200)
    _expect(await host.http.patch(f"{show}/studio", json={"music_level_db": MUSIC_LEVEL_DB}), 200)
    await host.open_line(show_id)
    await host.hearing()
    console.print(f"show {show_id} is live, the host's line is open")

    r = await caller.http.post(f"{show}/stage/call", json={"topic": "bench"})
    _expect(r, 201)
    caller_id = r.json()["me"]["call"]["user_id"]
    _expect(await host.http.post(f"{show}/stage/callers/{caller_id}/screen"), 200)
    await caller.open_line(show_id)
    await caller.hearing()
    _expect(await host.http.post(f"{show}/stage/callers/{caller_id}/air"), 200)
    on_air = time.monotonic()
    console.print(f"the caller is on air: {warmup:.0f} s settling, then {seconds - warmup:.0f} s")

    await asyncio.sleep(warmup)
    server0, client0, t0 = Usage.now(server.pid), Usage.now(os.getpid()), time.monotonic()
    await asyncio.sleep(on_air + seconds - time.monotonic())
    server1, client1, t1 = Usage.now(server.pid), Usage.now(os.getpid()), time.monotonic()
    await asyncio.sleep(MATCH_WINDOW_S)  # the last clicks' way through
    await host.http.post(f"{show}/end")

    span = (t0, t1)
    host_to_caller = match("host → caller", host.mic.sent, caller.ear, HOST_TONES, span)
    caller_to_host = match("caller → host", caller.mic.sent, host.ear, CALLER_TONES, span)
    host_to_caller.longest_gap = caller.ear.longest_gap(span)
    caller_to_host.longest_gap = host.ear.longest_gap(span)
    host_to_caller.echoes = echoes(host.ear, HOST_TONES, span)
    caller_to_host.echoes = echoes(caller.ear, CALLER_TONES, span)
    return Run(
        host_to_caller,
        caller_to_host,
        span,
        server=server1.share_since(server0, t1 - t0),
        client=client1.share_since(client0, t1 - t0),
        prefetch=host.prefetch(),
    )


# --- the report


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_run(run: Run, out: Console) -> None:
    table = Table(title="Mouth-to-ear delay on air (ms)", title_justify="left")
    table.add_column("direction")
    for column in ("clicks", "heard", "lost", "median", "p95", "max", "min"):
        table.add_column(column, justify="right")
    table.add_column("RTP at the\near (median)", justify="right")
    table.add_column("longest gap\nin the return", justify="right")
    table.add_column("own clicks\nheard back", justify="right")
    table.add_column("verdict")
    for d in run.directions:
        table.add_row(
            d.name,
            str(d.sent),
            str(len(d.clicks)),
            str(d.lost),
            ms(d.median),
            ms(d.p95),
            ms(d.max),
            ms(min(d.delays, default=None)),
            ms(d.to_socket),
            ms(d.longest_gap),
            str(d.echoes),
            _verdict(d.passed),
        )
    out.print(table)
    for d in run.directions:
        medians = " ".join(ms(m) for m in d.medians_every(TIMELINE_S, run.span[0]))
        out.print(f"{d.name}, median of each {TIMELINE_S:.0f} s in turn: {medians} ms")
    levels = [c.level for d in run.directions for c in d.clicks]
    if levels:
        out.print(
            f"clicks sent at {CLICK_LEVEL:.2f} arrived at {min(levels):.2f}-{max(levels):.2f} "
            f"(heard above {HEARD_AT * CLICK_LEVEL:.2f})"
        )
    prefetch = "some" if run.prefetch is None else str(run.prefetch)
    prefetch_ms = "" if run.prefetch is None else f" ({run.prefetch * FRAME_S * 1000:.0f} ms)"
    out.print(
        f"stated parts: each voice's studio jitter buffer {ms(DEFAULT_TARGET_LATENCY_S)} ms "
        f"(onair/studio/voice.py), the studio's {ms(FRAME_S)} ms frame, the limiter's "
        f"{ms(DEFAULT_LOOKAHEAD_S)} ms look-ahead, two Opus encodes; the server's aiortc "
        f"{aiortc.__version__} receiver hands each packet to the studio as soon as it is "
        f"whole; this client's receivers (the ears) hold {prefetch} packets{prefetch_ms} "
        "before decoding one (--ear-packets)"
    )
    measured = run.span[1] - run.span[0]
    out.print(
        f"over the {measured:.0f} s measured: the server used {run.server.cpu * 100:.0f} % of a "
        f"core and its threads waited {ms(run.server.waited)} ms a second for one; this process "
        f"(both peers) {run.client.cpu * 100:.0f} % and {ms(run.client.waited)} ms a second"
    )
    out.print(
        f"target: median < {ms(TARGET_MEDIAN_S)} ms and p95 < {ms(TARGET_P95_S)} ms in both "
        f"directions: [bold]{_verdict(run.passed)}[/bold]"
    )


def summary_line(run: Run) -> str:
    parts = [f"bench/conversation.py {dt.date.today().isoformat()}, {cpu_model()}:"]
    for d in run.directions:
        parts.append(
            f"{d.name} median {ms(d.median)} ms, p95 {ms(d.p95)} ms, max {ms(d.max)} ms "
            f"({len(d.clicks)} of {d.sent} clicks heard);"
        )
    parts.append(
        f"target median < {ms(TARGET_MEDIAN_S)} ms, p95 < {ms(TARGET_P95_S)} ms: "
        f"{_verdict(run.passed)}"
    )
    return " ".join(parts)


# --- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Prints the delay each way (median, p95, max; clicks heard and lost) and a "
        "PASS/FAIL against median < 150 ms and p95 < 250 ms.",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="time on air, warm-up included")
    parser.add_argument("--warmup", type=float, default=3.0, help="time on air not measured")
    parser.add_argument(
        "--ear-packets",
        type=int,
        default=2,
        help="packets the listening clients' receivers hold before decoding (a browser holds "
        "20-40 ms on a clean link; aiortc's own default is 4)",
    )
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.seconds - args.warmup < 5:
        parser.error("need --warmup >= 0 and at least 5 s measured after it")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM as Ctrl-C: the server child is stopped and the temporary data removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # This process plays two WebRTC peers, each with codec threads: with Python's default 5 ms
    # GIL switch interval a frame handed between them waits behind the others, which two
    # browsers would not, so a shorter interval keeps the harness from timing itself.
    sys.setswitchinterval(0.001)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="onair-conversation-") as tmp:
            data_dir = prepare_data_dir(Path(tmp), song_seconds=args.seconds + 60)
            with server_process(data_dir) as server:
                console.print(f"onair serve at {server.url} (pid {server.pid})")
                run = asyncio.run(conversation(server, args.seconds, args.warmup, args.ear_packets))
    except KeyboardInterrupt:
        console.print("interrupted: the server is stopped, nothing measured")
        return 130
    tones = "/".join(f"{t:.0f}" for t in HOST_TONES), "/".join(f"{t:.0f}" for t in CALLER_TONES)
    out = Console(width=OUTPUT_WIDTH)
    out.print(
        f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, aiortc "
        f"{aiortc.__version__}, PyAV {av.__version__}; {dt.date.today().isoformat()}; "
        f"{args.seconds:.0f} s on air, the first {args.warmup:.0f} s not measured; a "
        f"{ms(CLICK_SAMPLES / SAMPLE_RATE)} ms click every {ms(CLICK_EVERY_S)} ms each way "
        f"(host {tones[0]} Hz, caller {tones[1]} Hz in turn); "
        f"the run took {time.monotonic() - started:.0f} s after start-up"
    )
    print_run(run, out)
    print(summary_line(run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
