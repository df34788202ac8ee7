"""Known signals in, audio analysis out: helpers shared by the studio's tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from onair.studio.deck import DeckTrack
from onair.studio.frames import SAMPLE_RATE, Samples

Signal = npt.NDArray[np.float64]


def sine(freq: float, seconds: float, dbfs: float = -12.0, channels: int = 2) -> Samples:
    """A sine whose peak is ``dbfs``, shape (channels, n)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (10.0 ** (dbfs / 20.0) * np.sin(2.0 * np.pi * freq * t)).astype(np.float32)
    return np.tile(tone, (channels, 1))


def write_audio(path: Path, samples: Samples, codec: str = "flac") -> Path:
    """Encode stereo float samples to ``path`` with PyAV (16-bit FLAC or WAV)."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=SAMPLE_RATE, layout="stereo")
        for at in range(0, pcm.shape[1], 4096):
            chunk = np.ascontiguousarray(pcm[:, at : at + 4096].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def tone_track(
    directory: Path,
    name: str,
    freq: float,
    seconds: float,
    dbfs: float = -12.0,
    *,
    loudness_lufs: float | None = None,
    track_id: int = 1,
    queue_item_id: int | None = 1,
) -> DeckTrack:
    path = write_audio(directory / f"{name}.flac", sine(freq, seconds, dbfs))
    return DeckTrack(
        queue_item_id=queue_item_id,
        track_id=track_id,
        path=path,
        title=name,
        artists=("Test Tones",),
        loudness_lufs=loudness_lufs,
        duration_s=seconds,
    )


def render(next_frame: Callable[[], Samples], seconds: float) -> Samples:
    frames = math.ceil(seconds * SAMPLE_RATE / 960)
    return np.concatenate([next_frame() for _ in range(frames)], axis=1)


def at(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def tone_db(samples: Samples, freq: float) -> float:
    """Peak amplitude in dBFS of the ``freq`` component of the left channel (Hann window)."""
    x = np.asarray(samples[0], dtype=np.float64)
    window = np.hanning(x.shape[0])
    spectrum = np.abs(np.fft.rfft(x * window)) * 2.0 / window.sum()
    bin_hz = SAMPLE_RATE / x.shape[0]
    k = round(freq / bin_hz)
    amplitude = float(spectrum[max(0, k - 3) : k + 4].max())
    return 20.0 * math.log10(max(amplitude, 1e-12))


def rms_db(samples: Samples) -> float:
    power = float(np.mean(np.asarray(samples, dtype=np.float64) ** 2))
    return 10.0 * math.log10(max(power, 1e-24))


def windows(samples: Samples, seconds: float) -> list[Samples]:
    size = round(seconds * SAMPLE_RATE)
    return [samples[:, i : i + size] for i in range(0, samples.shape[1] - size + 1, size)]


def audible_span(samples: Samples, threshold_db: float = -60.0) -> tuple[int, int]:
    """First and one-past-last sample louder than ``threshold_db``."""
    loud = np.flatnonzero(np.abs(samples).max(axis=0) > 10.0 ** (threshold_db / 20.0))
    if loud.size == 0:
        return (0, 0)
    return (int(loud[0]), int(loud[-1]) + 1)


def longest_silence(samples: Samples, threshold_db: float = -60.0) -> int:
    """Longest run of samples quieter than ``threshold_db``, in samples."""
    quiet = np.abs(samples).max(axis=0) <= 10.0 ** (threshold_db / 20.0)
    if not quiet.any():
        return 0
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return int((ends - starts).max())
