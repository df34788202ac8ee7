"""Integrated loudness per ITU-R BS.1770-4 and EBU R128.

The measurement runs in three steps:

1. K-weighting: a high-shelf pre-filter (the head's acoustic effect) followed by the RLB
   high-pass, both as biquads derived for the signal's own sample rate from the analogue
   prototype, so 44.1 kHz, 16 kHz or 96 kHz files need no resampling first.
2. Gating blocks of 400 ms with 75 % overlap (a new block every 100 ms); each block's loudness is
   the weighted sum of its channels' mean squares.
3. An absolute gate at -70 LUFS, then a relative gate 10 LU below the loudness of the blocks that
   passed the absolute gate; the integrated loudness is that of the blocks passing both.

Silence (no block above the absolute gate, or less than one 400 ms block of audio) measures
``-inf``, not the ``-70.0`` floor some meters print: -70 LUFS is a real, measurable level, and a
caller normalising gain must not mistake silence for it.

``LoudnessMeter`` is the streaming form: filter state and the partial 100 ms step are carried
across ``add`` calls, so any chunking gives the same blocks as measuring the whole signal at once,
while memory grows by one float per 100 ms of audio rather than with the samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

__all__ = ["LoudnessMeter", "integrated_loudness", "k_weighting_sos"]

ABSOLUTE_GATE_LUFS: Final = -70.0
RELATIVE_GATE_LU: Final = -10.0
BLOCK_SECONDS: Final = 0.4
STEP_SECONDS: Final = 0.1

# BS.1770 offsets every reading so that a 1 kHz sine, which the K-weighting lifts by 0.691 dB,
# reads the same in LUFS as its level in dBFS.
_LOUDNESS_OFFSET: Final = -0.691

# Analogue prototype parameters of the two BS.1770 filters, as fitted to the standard's 48 kHz
# coefficient table (the same values libebur128 uses). Deriving the biquads from these keeps
# every sample rate on the same frequency response.
_SHELF_HZ: Final = 1681.974450955533
_SHELF_GAIN_DB: Final = 3.999843853973347
_SHELF_Q: Final = 0.7071752369554196
_SHELF_BANDWIDTH_EXPONENT: Final = 0.4996667741545416
_HIGHPASS_HZ: Final = 38.13547087602444
_HIGHPASS_Q: Final = 0.5003270373238773

# Below this the shelf's corner frequency approaches Nyquist and the bilinear mapping stops
# meaning anything; no audio we handle is sampled this low.
_MIN_SAMPLE_RATE: Final = 8000

FloatArray = npt.NDArray[np.float64]


def k_weighting_sos(sample_rate: int) -> FloatArray:
    """The K-weighting filter (pre-filter then RLB high-pass) as second-order sections.

    Returns an array of shape (2, 6) in ``scipy.signal.sosfilt`` layout. At 48 kHz it equals the
    coefficient table of BS.1770-4 to within 1e-8.
    """
    if sample_rate < _MIN_SAMPLE_RATE:
        raise ValueError(f"sample rate {sample_rate} Hz is too low to K-weight")

    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_BANDWIDTH_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]

    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    # The standard leaves the high-pass numerator unnormalised (1, -2, 1); its gain error is
    # part of what the -0.691 offset calibrates, so normalising it would shift every reading.
    highpass = [
        1.0,
        -2.0,
        1.0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _HIGHPASS_Q + k * k) / a0,
    ]
    return np.array([shelf, highpass], dtype=np.float64)


class LoudnessMeter:
    """Measures integrated loudness of audio fed in chunks of any size.

    ``samples`` passed to :meth:`add` have shape ``(channels, n)`` and are floats in [-1, 1].
    ``channel_weights`` are the BS.1770 weights G_i: 1.0 for left, right and centre (the
    default for every channel), 1.41 for the surround channels and 0.0 for LFE.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int = 2,
        channel_weights: Sequence[float] | None = None,
    ) -> None:
        if channels < 1:
            raise ValueError("a loudness meter needs at least one channel")
        if channel_weights is None:
            channel_weights = [1.0] * channels
        if len(channel_weights) != channels:
            raise ValueError(
                f"{len(channel_weights)} channel weights given for {channels} channels"
            )

        self._sample_rate = sample_rate
        self._channels = channels
        self._weights = np.asarray(channel_weights, dtype=np.float64)
        self._sos = k_weighting_sos(sample_rate)
        self._filter_state = np.zeros((self._sos.shape[0], channels, 2), dtype=np.float64)
        # Rates such as 11025 Hz have no whole-sample 100 ms step; rounding costs at most half a
        # sample per step, far below what the gating can resolve.
        self._step = max(1, round(sample_rate * STEP_SECONDS))
        self._block = round(BLOCK_SECONDS / STEP_SECONDS) * self._step
        self._steps_per_block = self._block // self._step
        # Weighted energy of samples not yet filling a whole step; kept as samples rather than a
        # running sum so every step's sum is computed the same way however the input was chunked.
        self._pending = np.zeros(0, dtype=np.float64)
        # The last steps_per_block - 1 step energies: the head of the next block.
        self._recent_steps = np.zeros(0, dtype=np.float64)
        self._block_chunks: list[FloatArray] = []
        self._samples_seen = 0

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def duration(self) -> float:
        """Seconds of audio added so far."""
        return self._samples_seen / self._sample_rate

    def add(self, samples: npt.ArrayLike) -> None:
        """Feed the next chunk, shape ``(channels, n)``; ``n`` may be anything, including 0."""
        chunk = np.asarray(samples, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[0] != self._channels:
            raise ValueError(
                f"expected samples of shape ({self._channels}, n), got {tuple(chunk.shape)}"
            )
        if chunk.shape[1] == 0:
            return
        self._samples_seen += chunk.shape[1]

        weighted, self._filter_state = signal.sosfilt(
            self._sos, chunk, axis=-1, zi=self._filter_state
        )
        energy = np.einsum("c,cn,cn->n", self._weights, weighted, weighted)

        energy = np.concatenate((self._pending, energy))
        whole_steps = energy.shape[0] // self._step
        used = whole_steps * self._step
        self._pending = energy[used:].copy()
        if whole_steps == 0:
            return
        step_energy = energy[:used].reshape(whole_steps, self._step).sum(axis=1)

        steps = np.concatenate((self._recent_steps, step_energy))
        self._recent_steps = steps[-(self._steps_per_block - 1) :].copy()
        if steps.shape[0] < self._steps_per_block:
            return
        windows = np.lib.stride_tricks.sliding_window_view(steps, self._steps_per_block)
        self._block_chunks.append(windows.sum(axis=1) / self._block)

    @property
    def integrated(self) -> float:
        """Gated integrated loudness in LUFS of everything added; ``-inf`` for silence."""
        if not self._block_chunks:
            return -math.inf
        return _gated_loudness(np.concatenate(self._block_chunks))


def integrated_loudness(
    samples: npt.ArrayLike,
    sample_rate: int,
    channel_weights: Sequence[float] | None = None,
) -> float:
    """Integrated loudness in LUFS of ``samples`` (shape ``(channels, n)``, floats in [-1, 1]).

    Returns ``-inf`` for silence or audio shorter than one 400 ms block.
    """
    chunk = np.asarray(samples, dtype=np.float64)
    if chunk.ndim != 2:
        raise ValueError(f"expected samples of shape (channels, n), got {tuple(chunk.shape)}")
    meter = LoudnessMeter(sample_rate, chunk.shape[0], channel_weights)
    meter.add(chunk)
    return meter.integrated


def _energy_of(loudness: float) -> float:
    return math.pow(10.0, (loudness - _LOUDNESS_OFFSET) / 10.0)


def _loudness_of(energy: float) -> float:
    return _LOUDNESS_OFFSET + 10.0 * math.log10(energy)


def _gated_loudness(block_energy: FloatArray) -> float:
    # Gates are compared in the energy domain so silent blocks (energy 0) need no log of zero.
    above_absolute = block_energy[block_energy > _energy_of(ABSOLUTE_GATE_LUFS)]
    if above_absolute.size == 0:
        return -math.inf
    relative_gate = _loudness_of(float(np.mean(above_absolute))) + RELATIVE_GATE_LU
    gated = above_absolute[above_absolute > _energy_of(relative_gate)]
    return _loudness_of(float(np.mean(gated)))
