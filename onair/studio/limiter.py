"""A look-ahead brickwall peak limiter: the last stage before the program leaves the studio.

The signal is delayed by the look-ahead (5 ms), so the gain can start falling before a peak
arrives and reach the reduction that peak needs exactly when it passes. Per sample ``k``:

1. ``required[k] = min(1, ceiling / peak[k])`` where ``peak`` is the larger of the channels;
2. ``hold[k]`` = the minimum of ``required`` over the next ``L`` samples (the look-ahead window);
3. release: the gain climbs back at a constant rate in dB (a fixed factor per sample), never
   above ``hold``;
4. attack: a moving average over ``L`` samples of that curve turns every drop into a smooth
   5 ms ramp. Each averaged sample only mixes values that already respect the peak inside the
   window, so the average does too, and the output never exceeds the ceiling.

Every step is a vector operation over the frame (a sliding minimum, a running minimum for the
release, a cumulative sum for the average); the state carried between frames is the delayed
audio and the tails those windows need. A frame whose peaks are under the ceiling while the
limiter is fully released is passed through with only the delay, which is the usual case for a
program normalised to -16 LUFS.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.ndimage import minimum_filter1d

from onair.studio.frames import CHANNELS, SAMPLE_RATE, Samples

__all__ = ["Limiter"]

DEFAULT_CEILING_DB: Final = -1.0
DEFAULT_LOOKAHEAD_S: Final = 0.005
DEFAULT_RELEASE_DB_PER_S: Final = 40.0
# The ceiling is held a hair below its nominal value so float32 rounding of the product
# sample times gain cannot land a peak one ulp above it.
_CEILING_MARGIN: Final = 1.0 - 1e-6

Curve = npt.NDArray[np.float64]


class Limiter:
    """Keeps every sample within ``ceiling_db`` dBFS, delaying the signal by ``latency``."""

    def __init__(
        self,
        *,
        ceiling_db: float = DEFAULT_CEILING_DB,
        lookahead_s: float = DEFAULT_LOOKAHEAD_S,
        release_db_per_s: float = DEFAULT_RELEASE_DB_PER_S,
    ) -> None:
        if release_db_per_s <= 0:
            raise ValueError("release must be a positive rate")
        self._ceiling = 10.0 ** (ceiling_db / 20.0) * _CEILING_MARGIN
        self._window = max(1, round(lookahead_s * SAMPLE_RATE)) + 1
        self._rise_per_sample = 10.0 ** (release_db_per_s / SAMPLE_RATE / 20.0)
        self._rise_cache: Curve = np.zeros(0)
        tail = self._window - 1
        self._delayed: Samples = np.zeros((CHANNELS, tail), dtype=np.float32)
        self._required_tail: Curve = np.ones(tail)
        self._envelope_tail: Curve = np.ones(tail)
        self._envelope = 1.0
        self._released = True
        self._reduction_db = 0.0
        self._scratch: Samples = np.empty((CHANNELS, 0), dtype=np.float32)

    @property
    def latency(self) -> int:
        """Samples by which the output lags the input."""
        return self._window - 1

    @property
    def gain_reduction_db(self) -> float:
        """The deepest reduction applied in the last frame, as a positive number of dB."""
        return self._reduction_db

    def process(self, samples: Samples) -> Samples:
        """Limit one block (any length) and return the same number of samples, delayed."""
        n = samples.shape[1]
        delayed = np.concatenate((self._delayed, samples), axis=1)
        out: Samples = delayed[:, :n]
        self._delayed = delayed[:, n:]
        if self._released and n:
            scratch = self._scratch
            if scratch.shape != samples.shape or scratch.dtype != samples.dtype:
                scratch = self._scratch = np.empty_like(samples)
            # One pass for the peak: |x| into a buffer kept for the purpose, then its maximum.
            top = float(np.abs(samples, out=scratch).max())
            if top <= self._ceiling:
                self._reduction_db = 0.0
                return out
        if n == 0:
            return out
        gains = self._gains(np.abs(samples).max(axis=0))
        return np.multiply(out, gains.astype(np.float32), dtype=np.float32)

    def _gains(self, peak: npt.NDArray[np.float32]) -> Curve:
        n = peak.shape[0]
        # ceiling / max(peak, ceiling) is min(1, ceiling / peak) without dividing by zero.
        required = self._ceiling / np.maximum(peak.astype(np.float64), self._ceiling)
        window = self._window
        span = np.concatenate((self._required_tail, required))
        # Forward-looking minimum: entry j covers span[j : j + window].
        hold = minimum_filter1d(span, window, origin=-(window // 2))[:n]
        self._required_tail = span[n:]

        # Release at a constant dB rate, i.e. the gain may grow by a fixed factor per sample:
        # envelope[k] = min over j <= k of hold[j] * rise^(k - j), and no more than the last
        # frame's envelope risen since. Factoring rise^k out turns that into a running minimum.
        rise = self._rise(n)
        envelope = np.minimum.accumulate(hold / rise) * rise
        np.minimum(envelope, self._envelope * rise, out=envelope)
        np.minimum(envelope, 1.0, out=envelope)
        self._envelope = float(envelope[-1])

        smoothed_span = np.concatenate((self._envelope_tail, envelope))
        sums = np.empty(smoothed_span.shape[0] + 1)
        sums[0] = 0.0
        np.cumsum(smoothed_span, out=sums[1:])
        gains: Curve = (sums[window:] - sums[:-window]) * (1.0 / window)
        self._envelope_tail = smoothed_span[n:]

        self._reduction_db = -20.0 * math.log10(max(float(gains.min()), 1e-12))
        self._released = (
            self._envelope >= 1.0
            and float(self._required_tail.min()) >= 1.0
            and float(self._envelope_tail.min()) >= 1.0
        )
        return gains

    def _rise(self, n: int) -> Curve:
        """rise^1 .. rise^n for the release rate, cached for the usual frame length."""
        if self._rise_cache.shape[0] != n:
            self._rise_cache = np.power(self._rise_per_sample, np.arange(1, n + 1))
        return self._rise_cache
