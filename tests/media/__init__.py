"""Helpers for the media tests: a tone "studio" feeding a ProgramFeed, audio analysis, and an
aiortc client that plays a browser."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from onair.media.feed import ProgramFeed
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame

Mono = npt.NDArray[np.float64]

START_PTS = 10 * SAMPLE_RATE
"""Feeds start as if the studio had been on air 10 s: outputs must not assume pts 0."""


@dataclass(frozen=True)
class Song:
    pts: int
    """Program sample where the song starts (set_title is called as this frame is published)."""
    frequency: float
    title: str


@dataclass
class ToneStudio:
    """Publishes sine "songs" into a feed from its own thread, paced like a studio clock.

    `speed` above 1 runs the clock faster than real time (outputs do not care).
    """

    feed: ProgramFeed
    songs: Sequence[Song]
    speed: float = 1.0
    amplitude: float = 0.3
    frames_published: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="tone-studio")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def pts(self) -> int:
        return START_PTS + self.frames_published * FRAME_SAMPLES

    def wait_until(self, pts: int, timeout: float = 60.0) -> None:
        """Blocks until the program reaches `pts` (async tests: `asyncio.to_thread`)."""
        if not wait_for(lambda: self.pts >= pts, timeout):
            raise TimeoutError(f"the tone studio did not reach pts {pts}")

    def _run(self) -> None:
        t0 = time.time()
        phase = 0.0
        pending = sorted(self.songs, key=lambda s: s.pts)
        frequency = pending[0].frequency
        n = np.arange(FRAME_SAMPLES)
        while not self._stop.is_set():
            pts = self.pts
            while pending and pending[0].pts <= pts:
                song = pending.pop(0)
                frequency = song.frequency
                self.feed.set_title(song.pts, song.title)
            step = 2 * np.pi * frequency / SAMPLE_RATE
            wave = (self.amplitude * np.sin(phase + step * n)).astype(np.float32)
            phase = (phase + step * FRAME_SAMPLES) % (2 * np.pi)
            wallclock = t0 + (pts - START_PTS) / SAMPLE_RATE
            self.feed.publish(ProgramFrame(pts, wallclock, np.stack([wave, wave])))
            self.frames_published += 1
            due = t0 + self.frames_published * FRAME_SAMPLES / SAMPLE_RATE / self.speed
            self._stop.wait(max(0.0, due - time.time()))


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@contextmanager
def tone_studio(
    feed: ProgramFeed, songs: Sequence[Song], speed: float = 1.0
) -> Iterator[ToneStudio]:
    studio = ToneStudio(feed, songs, speed)
    studio.start()
    try:
        yield studio
    finally:
        studio.stop()


def mono(frame: av.AudioFrame) -> Mono:
    """A decoded frame as mono float in [-1, 1], whatever the decoder's sample format."""
    samples = frame.to_ndarray()
    if frame.format.is_packed:
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    scale = float(np.iinfo(samples.dtype).max + 1) if samples.dtype.kind == "i" else 1.0
    return samples.mean(axis=0).astype(np.float64) / scale


def decode(data: bytes, fmt: str) -> Mono:
    """Decodes a whole stream (mp3, aac/adts, mpegts, wav) to mono float at 48 kHz."""
    chunks = []
    with av.open(io.BytesIO(data), format=fmt) as container:
        for frame in container.decode(audio=0):
            chunks.append(mono(frame))
    return np.concatenate(chunks) if chunks else np.zeros(0)


def dominant_frequency(samples: Mono, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def tone_changes(samples: Mono, low: float, high: float, hop: int = 240) -> int | None:
    """The sample where a `low` tone gives way to `high` (their amplitudes in 20 ms windows)."""
    window = 960
    t = np.arange(window) / SAMPLE_RATE
    taper = np.hanning(window)
    probes = [np.exp(-2j * np.pi * f * t) * taper * 2 / taper.sum() for f in (low, high)]
    for start in range(0, len(samples) - window, hop):
        chunk = samples[start : start + window]
        a_low, a_high = (abs(np.dot(chunk, probe)) for probe in probes)
        if a_high > a_low and a_high > 0.05:  # silence (codec priming) is neither tone
            return start + window // 2
    return None


# --- WebRTC clients ---------------------------------------------------------------------


@dataclass
class Client:
    """An aiortc peer connection playing a browser, collecting what it hears."""

    pc: RTCPeerConnection
    heard: list[Mono] = field(default_factory=list)
    location: str = ""
    tasks: set[asyncio.Future[None]] = field(default_factory=set)

    def audio(self) -> Mono:
        return np.concatenate(self.heard) if self.heard else np.zeros(0)

    def last_seconds(self, seconds: float) -> Mono:
        return self.audio()[-int(seconds * SAMPLE_RATE) :]

    async def packets_received(self) -> int:
        stats = await self.pc.getStats()
        return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")

    async def packets_reported_sent(self) -> int | None:
        """What the server's last RTCP sender report said it had sent."""
        stats = await self.pc.getStats()
        sent = [s.packetsSent for s in stats.values() if s.type == "remote-outbound-rtp"]
        return sent[0] if sent else None


def new_client(*, send: MediaStreamTrack | None = None) -> Client:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client = Client(pc)
    if send is None:
        pc.addTransceiver("audio", direction="recvonly")
    else:
        pc.addTransceiver(send, direction="sendrecv")

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        client.tasks.add(asyncio.ensure_future(listen(track, client.heard)))

    return client


async def listen(track: MediaStreamTrack, heard: list[Mono]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        stereo = frame.to_ndarray().reshape(-1, len(frame.layout.channels)) / 32768.0
        heard.append(stereo.mean(axis=1))


async def offer(client: Client) -> str:
    await client.pc.setLocalDescription(await client.pc.createOffer())
    return client.pc.localDescription.sdp


async def connect(
    http: httpx.AsyncClient, client: Client, path: str, headers: dict[str, str] | None = None
) -> Client:
    headers = {"content-type": "application/sdp", **(headers or {})}
    r = await http.post(path, content=await offer(client), headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/sdp")
    client.location = r.headers["location"]
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    return client
