"""The program's unit of time: 20 ms frames of 48 kHz stereo float32, as broadcast clocks tick."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 960

Samples = npt.NDArray[np.float32]
"""Audio as float32 in [-1, 1], shaped (CHANNELS, n)."""


def silence(n: int = FRAME_SAMPLES) -> Samples:
    return np.zeros((CHANNELS, n), dtype=np.float32)


@dataclass(frozen=True)
class ProgramFrame:
    """One frame of the program.

    `pts` counts samples since the studio started, so every output (WebRTC, HLS, Icecast) and
    every now-playing event refer to the same instant; `wallclock` is the Unix time the frame
    is heard at the studio, for EXT-X-PROGRAM-DATE-TIME and event timestamps.
    """

    pts: int
    wallclock: float
    samples: Samples
