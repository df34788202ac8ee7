"""The show's encoders: one per format, running only while someone consumes that format.

Each encoder subscribes to the show's `ProgramFeed` when its first consumer attaches and leaves
`feed.encoder_grace` seconds after the last one detaches. Encoding happens on the encoder's own
worker thread (PyAV releases the GIL inside the codec), never on the event loop; the thread
hands every packet to the attached sinks, so the program is encoded once per format however many
listeners there are.

Every packet carries the program pts of the first sample it decodes to (FFmpeg's packet pts,
which already accounts for the codec's priming delay), so metadata can be aligned with what is
heard rather than with when it was encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

import av
import numpy as np

from onair.media.feed import ProgramFeed
from onair.studio.frames import CHANNELS, SAMPLE_RATE, ProgramFrame, Samples

__all__ = [
    "AacEncoder",
    "EncodedPacket",
    "Encoder",
    "Format",
    "Mp3Encoder",
    "OpusEncoder",
    "PacketSink",
    "shared_encoder",
]

log = logging.getLogger("onair.media.encoder")

Format = Literal["mp3", "aac", "opus"]

TIME_BASE = Fraction(1, SAMPLE_RATE)
MAX_GAP_SAMPLES = SAMPLE_RATE
"""A hole in the program up to this long (frames the encoder's queue dropped) becomes silence,
so packet pts stay continuous; a larger jump (a studio restart) restarts the codec."""


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One codec frame of the program (a whole MP3 frame, an ADTS frame, an Opus packet)."""

    pts: int
    """Program sample (48 kHz since the studio started) of the first sample it decodes to."""
    duration: int
    """In samples at 48 kHz."""
    data: bytes
    wallclock: float
    """Unix time at which `pts` is heard at the studio."""


PacketSink = Callable[[EncodedPacket], None]
"""Called on the encoder's worker thread for every packet: it must not block. Hop to an event
loop with `loop.call_soon_threadsafe`."""


class Encoder:
    """Encodes one show's program to one format while it has sinks attached."""

    format: ClassVar[Format]
    codec_name: ClassVar[str]
    content_type: ClassVar[str]
    default_bit_rate: ClassVar[int] = 128_000

    def __init__(
        self,
        feed: ProgramFeed,
        *,
        bit_rate: int | None = None,
        grace: float | None = None,
        queue_frames: int = 50,
    ) -> None:
        self.feed = feed
        self.bit_rate = bit_rate or self.default_bit_rate
        self.grace = feed.encoder_grace if grace is None else grace
        self._queue_frames = queue_frames
        self._lock = threading.Lock()
        self._sinks: tuple[PacketSink, ...] = ()
        self._run: _Run | None = None
        self._idle_since = time.monotonic()
        self._closed = False
        self.starts = 0
        """How many times the worker has started (for tests and metrics)."""
        self.encode_seconds = 0.0
        """Time the worker has spent converting and encoding frames (read by /metrics)."""
        self.dropped_frames = 0
        """Program frames lost because the worker was behind (read by /metrics)."""

    # --- consumers

    def attach(self, sink: PacketSink) -> None:
        """Adds a consumer; the first one starts the worker."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"show {self.feed.show_id} has ended")
            if sink not in self._sinks:
                self._sinks = (*self._sinks, sink)
            if self._run is None:
                self._start()

    def detach(self, sink: PacketSink) -> None:
        """Removes a consumer; the worker stops `grace` seconds after the last one leaves."""
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s != sink)
            if not self._sinks:
                self._idle_since = time.monotonic()
                if self.grace <= 0:
                    self._stop()

    async def packets(self, max_queue: int = 50) -> AsyncIterator[EncodedPacket]:
        """The packets as an async iterator on the running loop, attached while iterated.

        A consumer more than `max_queue` packets behind loses the oldest ones (live audio
        has no use for stale packets). Closing the iterator (`aclose`) detaches.
        """
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue[EncodedPacket] = asyncio.Queue(max_queue)

        def put(packet: EncodedPacket) -> None:
            if pending.full():
                pending.get_nowait()
            pending.put_nowait(packet)

        def sink(packet: EncodedPacket) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(put, packet)

        self.attach(sink)
        try:
            while True:
                yield await pending.get()
        finally:
            self.detach(sink)

    @property
    def running(self) -> bool:
        return self._run is not None

    @property
    def sink_count(self) -> int:
        return len(self._sinks)

    def close(self) -> None:
        """Stops the worker for good (the show has ended)."""
        with self._lock:
            self._closed = True
            self._sinks = ()
            self._stop()

    # --- the codec, per format

    def _open_codec(self) -> av.AudioCodecContext:
        ctx = _audio_context(self.codec_name)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "stereo"
        ctx.format = "fltp"
        ctx.bit_rate = self.bit_rate
        ctx.time_base = TIME_BASE
        ctx.options = self._codec_options()
        ctx.open()
        return ctx

    def _codec_options(self) -> dict[str, str]:
        return {}

    def _frame(self, samples: Samples) -> av.AudioFrame:
        return av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")

    def _packet_bytes(self, payload: bytes) -> bytes:
        return payload

    # --- the worker

    def _start(self) -> None:
        run = _Run(self._queue_frames)
        self._run = run
        self.starts += 1
        run.thread = threading.Thread(
            target=self._work,
            args=(run,),
            name=f"encoder-{self.format}-show{self.feed.show_id}",
            daemon=True,
        )
        self.feed.subscribe(run)
        run.thread.start()
        log.info("encoder started show=%s format=%s", self.feed.show_id, self.format)

    def _stop(self) -> None:
        """Under the lock: unsubscribes and tells the worker to finish."""
        run, self._run = self._run, None
        if run is None:
            return
        self.feed.unsubscribe(run)
        run.stop()
        log.info("encoder stopped show=%s format=%s", self.feed.show_id, self.format)

    def _idle_expired(self, run: _Run) -> bool:
        with self._lock:
            if self._run is not run:
                return True
            if self._sinks or time.monotonic() - self._idle_since < self.grace:
                return False
            self._stop()
            return True

    def _work(self, run: _Run) -> None:
        try:
            self._encode_until_stopped(run)
        except Exception:
            log.exception("encoder failed show=%s format=%s", self.feed.show_id, self.format)
            with self._lock:
                if self._run is run:
                    self._stop()

    def _encode_until_stopped(self, run: _Run) -> None:
        ctx = self._open_codec()
        size = ctx.frame_size or 960
        pending = np.zeros((CHANNELS, 0), dtype=np.float32)
        pending_pts: int | None = None  # program pts of pending[:, 0]
        while True:
            try:
                frame = run.frames.get(timeout=0.25)
            except queue.Empty:
                frame = None if run.stopped else _NO_FRAME
            if frame is None:
                return
            # Frames come every 20 ms while the studio runs, so idleness is checked here and
            # not only when the queue runs dry.
            if not self._sinks and self._idle_expired(run):
                return
            if frame is _NO_FRAME:
                continue
            if pending_pts is None:
                pending_pts = frame.pts
            gap = frame.pts - (pending_pts + pending.shape[1])
            if 0 < gap <= MAX_GAP_SAMPLES:
                pending = np.concatenate([pending, _silence(gap)], axis=1)
            elif gap != 0:
                log.warning(
                    "program jumped show=%s format=%s by %d samples; restarting the codec",
                    self.feed.show_id,
                    self.format,
                    gap,
                )
                ctx = self._open_codec()
                pending, pending_pts = pending[:, :0], frame.pts
            anchor = (frame.pts, frame.wallclock)
            began = time.perf_counter()
            pending = np.concatenate([pending, frame.samples], axis=1)
            while pending.shape[1] >= size:
                av_frame = self._frame(np.ascontiguousarray(pending[:, :size]))
                av_frame.sample_rate = SAMPLE_RATE
                av_frame.time_base = TIME_BASE
                av_frame.pts = pending_pts
                pending = pending[:, size:]
                pending_pts += size
                for packet in ctx.encode(av_frame):
                    self._emit(packet, anchor)
            # One writer (this thread); a float add per 20 ms frame, no lock.
            self.encode_seconds += time.perf_counter() - began
            if run.dropped:
                self.dropped_frames += run.dropped
                log.warning(
                    "encoder behind show=%s format=%s: dropped %d frames",
                    self.feed.show_id,
                    self.format,
                    run.dropped,
                )
                run.dropped = 0

    def _emit(self, packet: av.Packet[Any], anchor: tuple[int, float]) -> None:
        if packet.pts is None:
            return
        pts = int(packet.pts)
        encoded = EncodedPacket(
            pts=pts,
            duration=int(packet.duration or 0),
            data=self._packet_bytes(bytes(packet)),
            wallclock=anchor[1] + (pts - anchor[0]) / SAMPLE_RATE,
        )
        for sink in self._sinks:
            try:
                sink(encoded)
            except Exception:
                log.exception(
                    "packet sink failed show=%s format=%s; detaching it",
                    self.feed.show_id,
                    self.format,
                )
                self.detach(sink)


def _audio_context(codec_name: str) -> av.AudioCodecContext:
    ctx = av.CodecContext.create(codec_name, "w")
    if not isinstance(ctx, av.AudioCodecContext):
        raise TypeError(f"{codec_name} is not an audio codec")
    return ctx


def _silence(n: int) -> Samples:
    return np.zeros((CHANNELS, n), dtype=np.float32)


_NO_FRAME = ProgramFrame(pts=-1, wallclock=0.0, samples=_silence(0))
"""Stands for "no frame this time" in the worker loop (a queue timeout)."""


class _Run:
    """One start of an encoder's worker: its frame queue, as the feed's subscriber."""

    def __init__(self, max_frames: int) -> None:
        self.frames: queue.Queue[ProgramFrame | None] = queue.Queue(max_frames)
        self.thread: threading.Thread | None = None
        self.dropped = 0
        self.stopped = False

    def push(self, frame: ProgramFrame) -> None:
        try:
            self.frames.put_nowait(frame)
        except queue.Full:
            # The worker is starved of CPU: lose this frame (it becomes silence) rather than
            # let the studio's tick wait.
            self.dropped += 1

    def stop(self) -> None:
        self.stopped = True
        # Never blocks: if the queue is full the worker is busy and will see the flag.
        try:
            self.frames.put_nowait(None)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                self.frames.get_nowait()
            with contextlib.suppress(queue.Full):
                self.frames.put_nowait(None)


class Mp3Encoder(Encoder):
    """MPEG-1 Layer III, 128 kb/s CBR, 48 kHz stereo: what every Icecast player takes."""

    format = "mp3"
    codec_name = "libmp3lame"
    content_type = "audio/mpeg"


class AacEncoder(Encoder):
    """AAC-LC in ADTS frames: the .aac stream sends them as they are, HLS muxes them into TS."""

    format = "aac"
    codec_name = "aac"
    content_type = "audio/aac"

    def _packet_bytes(self, payload: bytes) -> bytes:
        return adts_header(len(payload)) + payload


class OpusEncoder(Encoder):
    """Opus in 20 ms packets (one per program frame), for WebRTC."""

    format = "opus"
    codec_name = "libopus"
    content_type = "audio/opus"
    default_bit_rate = 96_000

    def _open_codec(self) -> av.AudioCodecContext:
        ctx = _audio_context(self.codec_name)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "stereo"
        ctx.format = "flt"  # libopus takes interleaved samples only
        ctx.bit_rate = self.bit_rate
        ctx.time_base = TIME_BASE
        ctx.options = {"application": "audio", "frame_duration": "20"}
        ctx.open()
        return ctx

    def _frame(self, samples: Samples) -> av.AudioFrame:
        interleaved = np.ascontiguousarray(samples.T).reshape(1, -1)
        return av.AudioFrame.from_ndarray(interleaved, format="flt", layout="stereo")


_ADTS_SAMPLING_INDEX = 3  # 48 kHz in ISO 14496-3's table
_ADTS_CHANNELS = 2


def adts_header(payload_size: int) -> bytes:
    """The 7-byte ADTS header (AAC-LC, 48 kHz, stereo, no CRC) for one raw AAC frame."""
    n = payload_size + 7
    profile = 1  # AAC-LC is object type 2, written minus one
    return bytes(
        (
            0xFF,
            0xF1,  # sync, MPEG-4, layer 0, no CRC
            (profile << 6) | (_ADTS_SAMPLING_INDEX << 2) | (_ADTS_CHANNELS >> 2),
            ((_ADTS_CHANNELS & 3) << 6) | (n >> 11),
            (n >> 3) & 0xFF,
            ((n & 7) << 5) | 0x1F,  # buffer fullness 0x7FF: variable rate
            0xFC,  # one raw data block
        )
    )


def shared_encoder(feed: ProgramFeed, fmt: Format) -> Encoder:
    """The show's one encoder for `fmt`, made on first use and stopped when the show ends."""

    def make() -> Encoder:
        match fmt:
            case "mp3":
                return Mp3Encoder(feed)
            case "aac":
                return AacEncoder(feed)
            case "opus":
                return OpusEncoder(feed)

    return feed.shared(f"encoder.{fmt}", make)
