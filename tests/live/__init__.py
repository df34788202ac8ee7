"""Helpers for the live tests: tone "songs" in a test catalog, tone microphones, and the
analysis that tells which tones a recording holds and when."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack

from onair.app import create_app
from onair.catalog.audiofile import probe_audio_file
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import SystemClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.server import RunningServer, serve

RATE = 48_000
Mono = npt.NDArray[np.float64]


def write_song(path: Path, freq: float, seconds: float, level: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    write_flac(path, level * np.sin(2 * np.pi * freq * t))


def write_flac(path: Path, mono: Mono) -> None:
    """`mono` (-1..1 at RATE) as a stereo FLAC file."""
    pcm = (np.vstack([mono, mono]) * 32767).astype(np.int16).T.reshape(1, -1)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = 0
        frame.time_base = fractions.Fraction(1, RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def seed_songs(url: str, songs: list[tuple[Path, str]]) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        items = []
        for path, title in songs:
            info = probe_audio_file(path)
            items.append(
                TrackInput(
                    source="test",
                    source_key=f"test:{title}",
                    title=title,
                    artists=("Test Tones",),
                    genres=("Test",),
                    duration_s=info.duration_s,
                    loudness_lufs=info.loudness_lufs,
                    audio_path=str(path),
                )
            )
        await CatalogWriter(db, SystemClock()).write(items)
        await db.commit()
    await engine.dispose()


@contextmanager
def serving_concert_a(root: Path, **settings: Any) -> Iterator[RunningServer]:
    """A real server with its data under `root` whose catalog is one song: a minute of 440 Hz,
    "Concert A" by "Test Tones"; `settings` are the app's own."""
    config = Settings(data_dir=root / "var", **settings)
    config.data_dir.mkdir(parents=True)
    upgrade(config.resolved_database_url)
    song = root / "a440.flac"
    write_song(song, 440.0, 60.0, 0.3)
    asyncio.run(seed_songs(config.resolved_database_url, [(song, "Concert A")]))
    with serve(create_app(config)) as running:
        yield running


def band_db(signal: Mono, freq: float) -> float:
    """Power within ±25 Hz of `freq`, in dB full scale (a full-scale sine reads -3 dB)."""
    window = np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal * window)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    band = spectrum[(freqs > freq - 25) & (freqs < freq + 25)].sum()
    norm = (window**2).sum() * len(signal) / 2
    return float(10 * np.log10(band / norm + 1e-20))


def levels(signal: Mono, freq: float, hop: float = 0.05) -> Mono:
    n = int(hop * RATE)
    return np.array([band_db(signal[i : i + n], freq) for i in range(0, len(signal) - n, n)])


def runs(mask: npt.NDArray[np.bool_], hop: float = 0.05) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of True, ignoring blips shorter than 150 ms and
    bridging dropouts up to 100 ms (one late packet on a loaded machine is not a new word)."""
    found: list[tuple[float, float]] = []
    start: int | None = None
    for i, on in enumerate([*mask, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if (i - start) * hop >= 0.15:
                begin = start * hop
                if found and begin - found[-1][1] <= 0.1 + 1e-9:
                    begin = found.pop()[0]
                found.append((begin, i * hop))
            start = None
    return found


class ToneTrack(MediaStreamTrack):
    """A microphone paced in real time: `level(t)` (seconds since the first frame) gives each
    20 ms frame's amplitude of a `frequency` sine; 0 is silence. `hang()` makes it stop sending
    without closing anything, as a peer that vanishes from the network does."""

    kind = "audio"

    def __init__(self, frequency: float, level: Callable[[float], float] = lambda t: 0.3):
        super().__init__()
        self.frequency = frequency
        self.level = level
        self._i = 0
        self._start: float | None = None
        self._hung = asyncio.Event()

    def hang(self) -> None:
        self._hung.set()

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._i * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self._hung.is_set():
            await asyncio.Event().wait()  # never again
        t0 = self._i * 0.02
        t = t0 + np.arange(960) / RATE
        mono = self.level(t0) * np.sin(2 * np.pi * self.frequency * t)
        pcm = (np.vstack([mono, mono]) * 32767).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = self._i * 960
        frame.time_base = fractions.Fraction(1, RATE)
        self._i += 1
        return frame
