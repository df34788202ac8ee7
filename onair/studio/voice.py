"""A voice on air (the host, a co-host, a caller) behind a jitter buffer.

Audio from the network arrives in bursts and chunks of any length; the program takes exactly one
20 ms frame every 20 ms. The buffer absorbs the difference by holding a target of audio before
it starts playing. The target adapts, as a browser's does: it starts at ``target_latency_s``
(40 ms by default: two WebRTC packets, all a clean link needs, so a conversation stays quick),
grows by a frame each time the buffer runs dry, up to 160 ms, and shrinks back by a frame after
10 s without running dry. When the network falls behind and the buffer runs
dry, the voice goes silent and waits until the target is buffered again, rather than stuttering
frame by frame; when it gets too far ahead (a burst after a stall, or a sender clock running
fast) the oldest audio is dropped back down to the target, so the latency never creeps up: at
once when the buffer would overflow, and after a second in which it never came within a frame
of the target (a stall that left a conversation 100 ms behind for good otherwise).

With a ``pts_hint`` (the sender's timestamp converted to 48 kHz samples) the buffer also keeps
time: a gap from lost packets is filled with silence, and a late duplicate is discarded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Final, cast

import numpy as np
import numpy.typing as npt

from onair.studio.frames import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, Samples

__all__ = ["VoiceInput", "VoiceStats"]

DEFAULT_TARGET_LATENCY_S: Final = 0.04
DEFAULT_MAX_LATENCY_S: Final = 0.2
MAX_TARGET_LATENCY_S: Final = 0.16
SHRINK_AFTER_FRAMES: Final = 500
"""Frames (10 s) without running dry before the target comes down a frame."""
# A longer hole in the timestamps is a sender restart or a clock jump, not loss to conceal:
# the buffer just carries on from the new timestamp.
MAX_CONCEALED_GAP_S: Final = 0.5
MAX_LEVEL: Final = 4.0
TRIM_WINDOW_FRAMES: Final = 50
"""The buffer's low point over this many frames (1 s) is what it holds beyond what jitter needs."""


@dataclass
class VoiceStats:
    """What the jitter buffer has had to do, for the host console and for metrics."""

    underruns: int = 0  # times the buffer ran dry while playing
    overflows: int = 0  # times it got too far ahead and dropped audio
    dropped_samples: int = 0
    concealed_samples: int = 0  # silence inserted for gaps in the timestamps
    late_samples: int = 0  # samples discarded as older than what was already buffered
    trims: int = 0  # times a standing excess of latency was dropped


class VoiceInput:
    """One voice's buffer; ``push`` from the network side, ``pull`` once per program frame."""

    def __init__(
        self,
        voice_id: str,
        *,
        target_latency_s: float = DEFAULT_TARGET_LATENCY_S,
        max_latency_s: float = DEFAULT_MAX_LATENCY_S,
    ) -> None:
        self.voice_id = voice_id
        self.stats = VoiceStats()
        self._lock = threading.Lock()
        self._capacity = max(
            round(max_latency_s * SAMPLE_RATE),
            round(target_latency_s * SAMPLE_RATE) + 2 * FRAME_SAMPLES,
        )
        self._target = 0
        self._floor = 0
        self._ceiling = min(
            round(MAX_TARGET_LATENCY_S * SAMPLE_RATE), self._capacity - 2 * FRAME_SAMPLES
        )
        self._steady = 0  # frames since the buffer last ran dry
        self.target_latency_s = target_latency_s
        self._buf: Samples = np.zeros((CHANNELS, self._capacity), dtype=np.float32)
        self._start = 0
        self._count = 0
        self._buffering = True
        self._next_pts: int | None = None
        self._active = False
        self._muted = False
        self._level = 1.0
        self._applied_gain = 1.0
        self._ramp = (np.arange(1, FRAME_SAMPLES + 1) / FRAME_SAMPLES).astype(np.float32)
        self._low = self._capacity  # the fewest samples buffered after a pull, this window
        self._window = 0

    # -- connection and controls ----------------------------------------------------------

    @property
    def active(self) -> bool:
        """Someone is connected on this voice (set by ``connect``, or by the first ``push``)."""
        return self._active

    def connect(self) -> None:
        with self._lock:
            self._active = True

    def disconnect(self) -> None:
        """The sender went away: forget what was buffered, ready for them to rejoin."""
        with self._lock:
            self._active = False
            self._reset()

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        self._muted = value

    @property
    def level(self) -> float:
        return self._level

    @level.setter
    def level(self, gain: float) -> None:
        self._level = min(MAX_LEVEL, max(0.0, gain))

    @property
    def level_db(self) -> float:
        return -math.inf if self._level == 0.0 else 20.0 * math.log10(self._level)

    @level_db.setter
    def level_db(self, db: float) -> None:
        self.level = 0.0 if db == -math.inf else 10.0 ** (db / 20.0)

    @property
    def target_latency_s(self) -> float:
        """The delay the buffer aims for now (it adapts to the jitter it sees)."""
        return self._target / SAMPLE_RATE

    @target_latency_s.setter
    def target_latency_s(self, seconds: float) -> None:
        """Sets the lowest target, and starts from it."""
        # At least one frame, and room above it for a frame's worth of jitter before dropping.
        target = round(seconds * SAMPLE_RATE)
        self._floor = self._target = min(max(FRAME_SAMPLES, target), self._capacity - FRAME_SAMPLES)
        self._ceiling = max(self._ceiling, self._floor)

    @property
    def buffered_s(self) -> float:
        return self._count / SAMPLE_RATE

    # -- the network side -----------------------------------------------------------------

    def push(self, samples: npt.NDArray[np.generic], pts_hint: int | None = None) -> None:
        """Queue audio at 48 kHz: shape (n,) or (1, n) mono, or (2, n) stereo; float in
        [-1, 1] or int16. ``pts_hint`` is the sample index of its first sample in the
        sender's timeline, if known."""
        chunk = _as_rows(samples)
        with self._lock:
            self._active = True
            if pts_hint is not None:
                chunk = self._keep_time(chunk, pts_hint)
            if chunk.shape[1]:
                self._write(chunk)

    def _keep_time(self, chunk: Samples, pts: int) -> Samples:
        expected, n = self._next_pts, chunk.shape[1]
        if expected is None or abs(pts - expected) > round(MAX_CONCEALED_GAP_S * SAMPLE_RATE):
            # The first chunk, or the sender's clock jumped: take its timeline from here.
            self._next_pts = pts + n
            return chunk
        gap = pts - expected
        if gap >= 0:
            self._next_pts = pts + n
            if gap == 0:
                return chunk
            self.stats.concealed_samples += gap
            silence = np.zeros((chunk.shape[0], gap), dtype=np.float32)
            return np.concatenate((silence, chunk), axis=1)
        late = min(n, -gap)
        self.stats.late_samples += late
        self._next_pts = max(expected, pts + n)
        return chunk[:, late:]

    def _write(self, chunk: Samples) -> None:
        n = chunk.shape[1]
        if self._count + n > self._capacity:
            # Drop back to the target latency, keeping the newest audio.
            keep_old = max(0, self._target - n)
            if n > self._target:
                chunk = chunk[:, n - self._target :]
            dropped = self._count - keep_old + (n - chunk.shape[1])
            self._start = (self._start + self._count - keep_old) % self._capacity
            self._count = keep_old
            self.stats.overflows += 1
            self.stats.dropped_samples += dropped
            n = chunk.shape[1]
        at = (self._start + self._count) % self._capacity
        first = min(n, self._capacity - at)
        self._buf[:, at : at + first] = chunk[:, :first]
        if n > first:
            self._buf[:, : n - first] = chunk[:, first:]
        self._count += n

    # -- the program side -----------------------------------------------------------------

    def pull(self) -> Samples:
        """One frame of this voice, level and mute applied (both glide over the frame)."""
        out: Samples = np.zeros((CHANNELS, FRAME_SAMPLES), dtype=np.float32)
        with self._lock:
            self._read_into(out)
        gain = 0.0 if self._muted else self._level
        start, self._applied_gain = self._applied_gain, gain
        if start == gain:
            if gain != 1.0:
                out *= gain
        else:
            out *= start + (gain - start) * self._ramp
        return out

    def _read_into(self, out: Samples) -> None:
        if self._buffering:
            if self._count < self._target:
                return
            self._buffering = False
        n = min(FRAME_SAMPLES, self._count)
        first = min(n, self._capacity - self._start)
        out[:, :first] = self._buf[:, self._start : self._start + first]
        if n > first:
            out[:, first:n] = self._buf[:, : n - first]
        self._start = (self._start + n) % self._capacity
        self._count -= n
        if n < FRAME_SAMPLES:
            self.stats.underruns += 1
            self._buffering = True
            self._low, self._window = self._capacity, 0
            # The network is jumpier than the target allowed for: hold a frame more.
            self._target = min(self._ceiling, self._target + FRAME_SAMPLES)
            self._steady = 0
            return
        self._steady += 1
        if self._steady >= SHRINK_AFTER_FRAMES and self._target > self._floor:
            self._target = max(self._floor, self._target - FRAME_SAMPLES)
            self._steady = 0
        if self._count < self._low:
            self._low = self._count
        self._window += 1
        if self._window >= TRIM_WINDOW_FRAMES:
            self._trim_standing_excess()

    def _trim_standing_excess(self) -> None:
        excess = self._low - self._target
        self._low, self._window = self._capacity, 0
        if excess > FRAME_SAMPLES:
            # A second in which the buffer never came within a frame of its target: that much
            # is delay, not jitter headroom. Drop the oldest of it.
            self._start = (self._start + excess) % self._capacity
            self._count -= excess
            self.stats.trims += 1
            self.stats.dropped_samples += excess

    def _reset(self) -> None:
        self._start = 0
        self._count = 0
        self._buffering = True
        self._next_pts = None
        self._low, self._window = self._capacity, 0
        self._target, self._steady = self._floor, 0


def _as_rows(samples: npt.NDArray[np.generic]) -> Samples:
    """The chunk as float32 rows: (2, n) for stereo, (1, n) for mono. A mono microphone is
    centred (the same signal in both channels, at full level): the buffer's write broadcasts
    the one row into both, so no stereo copy is made on the way in."""
    if type(samples) is np.ndarray and samples.dtype == np.float32 and samples.ndim == 1:
        # What a WebRTC receiver pushes: one mono float32 row, taken as it is.
        return cast(Samples, samples[np.newaxis, :])
    data = np.asarray(samples)
    if data.dtype == np.int16:
        data = data.astype(np.float32) * (1.0 / 32768.0)
    elif data.dtype != np.float32:
        data = data.astype(np.float32)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2 or data.shape[0] not in (1, CHANNELS):
        raise ValueError(f"voice audio must be (n,), (1, n) or (2, n), got {data.shape}")
    return data
