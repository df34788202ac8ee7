"""A fixed ring of decoded samples between one writer (a decoder) and one reader (the deck)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from onair.studio.frames import CHANNELS, Samples

__all__ = ["Plane", "SampleRing"]

Plane = npt.NDArray[np.float32]
"""One channel of decoded audio."""


class SampleRing:
    """A fixed ring of decoded samples with one writer (the decoder) and one reader (the deck).

    The writer only fills free space and the reader only drains filled space, so the copies run
    outside the lock; the lock guards the two counters that hand space from one to the other.
    """

    def __init__(self, capacity: int) -> None:
        # np.zeros pages are only committed when first written, so a ring that is never filled
        # to capacity (the next song, pre-decoded for PREPARE_S) costs only what it holds.
        self._buf: Samples = np.zeros((CHANNELS, capacity), dtype=np.float32)
        self._capacity = capacity
        self._start = 0
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def write(self, chunk: Samples | Sequence[Plane], gain: float = 1.0) -> int:
        """Store as much of ``chunk`` (one row of samples per channel) as fits, times ``gain``;
        returns how many samples were taken."""
        capacity = self._capacity
        with self._lock:
            count = self._count
            at = self._start + count
        n = min(len(chunk[0]), capacity - count)
        if n <= 0:
            return 0
        if at >= capacity:
            at -= capacity
        first = min(n, capacity - at)
        buf = self._buf
        if first == n:
            np.multiply(chunk[0][:n], gain, out=buf[0, at : at + n])
            np.multiply(chunk[1][:n], gain, out=buf[1, at : at + n])
        else:
            for channel in range(CHANNELS):
                row, out = chunk[channel], buf[channel]
                np.multiply(row[:first], gain, out=out[at:])
                np.multiply(row[first:n], gain, out=out[: n - first])
        with self._lock:
            self._count += n
        return n

    def read_into(self, out: Samples) -> int:
        """Move up to ``out.shape[1]`` samples into ``out``; returns how many there were."""
        # No lock to look: only the reader moves ``_start``, and the writer only ever adds to
        # ``_count``, so a stale count just leaves new samples for the next read.
        start, count = self._start, self._count
        n = min(int(out.shape[1]), count)
        if n <= 0:
            return 0
        capacity = self._capacity
        first = min(n, capacity - start)
        if first == n:
            out[:, :n] = self._buf[:, start : start + n]
        else:
            out[:, :first] = self._buf[:, start:]
            out[:, first:n] = self._buf[:, : n - first]
        start += n
        with self._lock:
            self._start = start - capacity if start >= capacity else start
            self._count -= n
        return n
