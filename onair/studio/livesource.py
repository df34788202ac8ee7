"""Music from outside the catalog: a live stream (DJ software) decoded as it arrives.

The transport (the Icecast source ingest) hands the raw stream in with ``feed`` from its own
thread or event loop; a thread of the source's own decodes it with PyAV into a ``SampleRing``
that the music deck plays from like a song's ring. The deck starts it once ``buffer_s`` of
audio is waiting (a jitter buffer: network bursts and a sender's lumpy writes never reach the
program), and ends it when the stream ends or its buffer runs dry, segueing into the next song.

Titles sent beside the stream (Icecast's ``/admin/metadata``) are placed at the sample the
decoder had reached when they came, so they change when the music they were sent with is heard.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence
from typing import Any, Final

import av
import numpy as np

from onair.studio.frames import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, Samples
from onair.studio.ring import Plane, SampleRing

__all__ = ["FORMATS", "LiveSource", "SourceBusy"]

log = logging.getLogger(__name__)

DEFAULT_BUFFER_S: Final = 1.0
# The ring holds this much beyond the buffer; the deck trims it back (after a pause, or a
# sender whose clock runs fast) so the live music stays about ``buffer_s`` behind the sender.
_SLACK_S: Final = 4.0
# Undecoded bytes held for the decoder: ten seconds of a 320 kbit/s stream. A sender that
# outruns the decoder by more is not a live source.
MAX_PENDING_BYTES: Final = 400_000
_READ_CHUNK: Final = 4096
# A sender's sound card runs a little fast or slow against the studio's clock (±100 ppm is
# common: a third of a second an hour). Once the buffer has drifted this far from its target,
# each frame takes one sample more or less from the ring (0.1 %, under two cents of pitch),
# which pulls it back long before it could run dry or pile up.
PACE_BAND_S: Final = 0.25

# What FFmpeg calls the container of each Content-Type a source may send.
FORMATS: Final = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/vorbis": "ogg",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "audio/x-aac": "aac",
}


class SourceBusy(Exception):
    """A live source already feeds the show (Icecast's "mountpoint in use")."""


class _BytePipe:
    """Bytes from the transport to the decoder thread: ``read`` blocks until some arrive."""

    def __init__(self, limit: int) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit
        self._closed = False
        self._ready = threading.Condition()

    def write(self, data: bytes) -> bool:
        """Queues ``data``; False when the pipe is closed or the decoder is this far behind."""
        with self._ready:
            if self._closed or self._size + len(data) > self._limit:
                return False
            self._chunks.append(data)
            self._size += len(data)
            self._ready.notify()
            return True

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, waiting for the first; b"" once closed and drained (end of file)."""
        with self._ready:
            while not self._chunks and not self._closed:
                self._ready.wait()
            if not self._chunks:
                return b""
            if n < 0:
                n = self._size
            parts: list[bytes] = []
            got = 0
            while self._chunks and got < n:
                chunk = self._chunks.popleft()
                if got + len(chunk) > n:
                    self._chunks.appendleft(chunk[n - got :])
                    chunk = chunk[: n - got]
                parts.append(chunk)
                got += len(chunk)
            self._size -= got
            return b"".join(parts)


class LiveSource:
    """One live stream into a show's music deck.

    ``container`` is FFmpeg's name for the stream's format ("mp3", "ogg", "aac"), or None to
    let FFmpeg tell from the bytes. The transport calls ``feed``, ``end`` and ``set_title``;
    the deck reads ``ring``, ``total``, ``finished`` and ``ready`` and calls ``take_off_air``.
    """

    def __init__(
        self,
        name: str = "",
        container: str | None = "mp3",
        *,
        buffer_s: float = DEFAULT_BUFFER_S,
        title: str = "",
    ) -> None:
        self.name = name
        """Who is sending, for logs and the console (the software's User-Agent or ice-name)."""
        self.container = container
        self.buffer = max(1, round(buffer_s * SAMPLE_RATE))
        self.ring = SampleRing(self.buffer + round(_SLACK_S * SAMPLE_RATE))
        self._trim_slack = round(_SLACK_S * SAMPLE_RATE / 2)
        self._band = min(round(PACE_BAND_S * SAMPLE_RATE), self.buffer // 4)
        self._paced: Samples = np.zeros((CHANNELS, FRAME_SAMPLES + 1), dtype=np.float32)
        self.paced_frames = 0
        """Frames read a sample long or short to follow the sender's clock."""
        self.total = 0
        """Samples handed to the ring so far."""
        self.failure: str | None = None  # as a song's reader has; a live source never fails one
        self.finished = False
        """No more samples will arrive: the stream ended or the source was taken off air."""
        self.end_reason: str | None = None
        self.overflowed = 0
        """Decoded samples dropped because the ring was full (the deck was paused)."""
        self._title = title
        self._titles: collections.deque[tuple[int, str]] = collections.deque()
        self._lock = threading.Lock()
        self._pipe = _BytePipe(MAX_PENDING_BYTES)
        self._off_air = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the transport's side -------------------------------------------------------------

    def start(self) -> None:
        """Starts the decoder thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._decode, name="onair-live-source", daemon=True
            )
            self._thread.start()

    def feed(self, data: bytes) -> bool:
        """Hands over the next bytes of the stream; False once the source is off air (the
        transport should hang up) or hopelessly behind."""
        if self._off_air.is_set() or self.finished:
            return False
        return self._pipe.write(data)

    def end(self, reason: str) -> None:
        """The stream is over (the sender hung up or went quiet): what is decoded still plays."""
        with self._lock:
            if self.end_reason is None:
                self.end_reason = reason
        self._pipe.close()

    def set_title(self, title: str) -> None:
        """What is playing now, heard once the audio decoded so far has been played."""
        with self._lock:
            self._title = title
            self._titles.append((self.total, title))

    @property
    def title(self) -> str:
        return self._title

    @property
    def off_air(self) -> bool:
        return self._off_air.is_set()

    def wait_off_air(self, timeout: float | None = None) -> bool:
        return self._off_air.wait(timeout)

    # -- the deck's side ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Holding the jitter buffer (or all there will ever be): it can go on air."""
        return self.ring.count >= self.buffer or (self.finished and self.ring.count > 0)

    def take_off_air(self, reason: str) -> None:
        """The deck is done with it: the decoder stops and the transport hangs up."""
        with self._lock:
            if self.end_reason is None:
                self.end_reason = reason
        self._off_air.set()
        self._pipe.close()

    def stall(self) -> None:
        """The deck found the buffer empty while the stream still runs: treat it as ended."""
        with self._lock:
            if self.end_reason is None:
                self.end_reason = "no data"
        self.finished = True
        self._pipe.close()

    def trim(self) -> int:
        """Drops the oldest audio when far more than the buffer waits (after a pause, or from
        a sender whose clock runs fast); returns how many samples went."""
        count = self.ring.count
        if count <= self.buffer + self._trim_slack:
            return 0
        scratch = np.empty((CHANNELS, count - self.buffer), dtype=np.float32)
        return self.ring.read_into(scratch)

    def read_paced(self, out: Samples) -> int:
        """Fills ``out`` from the ring like ``SampleRing.read_into``, but one sample more or
        less is taken (and the frame stretched to fit) while the buffer has drifted beyond
        ``PACE_BAND_S`` of its target."""
        n = int(out.shape[1])
        count = self.ring.count
        step = 0
        if count > self.buffer + self._band:
            step = 1
        elif count < self.buffer - self._band and not self.finished:
            step = -1
        if step == 0 or n < 2 or n + step > self._paced.shape[1]:
            return self.ring.read_into(out)
        taken = self._paced[:, : n + step]
        got = self.ring.read_into(taken)
        if got < n + step:  # too little for a stretch: play what there is as it is
            out[:, :got] = taken[:, :got]
            return got
        at = np.linspace(0.0, n + step - 1, n)
        grid = np.arange(n + step)
        for channel in range(CHANNELS):
            out[channel] = np.interp(at, grid, taken[channel])
        self.paced_frames += 1
        return n

    def title_due(self) -> str | None:
        """The latest title sent with audio the deck has now taken from the ring, once."""
        with self._lock:
            taken = self.total - self.ring.count
            title = None
            while self._titles and self._titles[0][0] <= taken:
                title = self._titles.popleft()[1]
            return title

    # -- the decoder thread ---------------------------------------------------------------

    def _decode(self) -> None:
        try:
            self._decode_stream()
        # Whatever FFmpeg makes of a broken stream, the show goes on: the source just ends.
        except Exception as exc:
            log.info("live source %r stopped decoding: %s", self.name, exc)
            with self._lock:
                if self.end_reason is None:
                    self.end_reason = f"undecodable stream: {exc}"
        finally:
            self.finished = True
            self._pipe.close()

    def _decode_stream(self) -> None:
        # Small probes: FFmpeg must not wait for seconds of a live stream before the first frame.
        options = {"probesize": "8192", "analyzeduration": "0"}
        container = av.open(
            self._pipe, mode="r", format=self.container, options=options, buffer_size=_READ_CHUNK
        )
        try:
            if not container.streams.audio:
                raise ValueError("no audio in the stream")
            stream = container.streams.audio[0]
            resampler: Any = None
            shape: tuple[str, int, int] | None = None
            for frame in container.decode(stream):
                if self._off_air.is_set():
                    return
                frame_shape = (frame.format.name, frame.layout.nb_channels, frame.sample_rate)
                if frame_shape != shape:  # the sender changed rate or channels: start over
                    shape = frame_shape
                    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
                frame.pts = None  # a live stream's timestamps may jump; the resampler need not care
                self._write(resampler.resample(frame))
            if resampler is not None:
                self._write(resampler.resample(None))
        finally:
            container.close()

    def _write(self, frames: Sequence[Any]) -> None:
        for frame in frames:
            n = frame.samples
            if not n:
                continue
            planes: list[Plane] = [
                np.frombuffer(plane, dtype=np.float32, count=n) for plane in frame.planes[:CHANNELS]
            ]
            taken = self.ring.write(planes)
            self.overflowed += n - taken
            with self._lock:
                self.total += taken
