"""A real OnAir on 127.0.0.1 and Debian's Chromium driven by Playwright, for browser tests.

The server runs uvicorn in a background thread on a socket bound before it starts (so the port
is free and known), over a fresh SQLite database with a few playable songs made with PyAV: three
one-second tones and a minute of 440 Hz (LIVE_SONG) that a live show can really play.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from onair.app import create_app
from onair.catalog.audiofile import probe_audio_file
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import SystemClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.server import serve

# Debian's Chromium, never a downloaded browser; ONAIR_CHROMIUM points elsewhere if need be.
CHROMIUM = Path(os.environ.get("ONAIR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# A real song for live shows: long enough to play all through a test, loudness measured.
LIVE_SONG = "Concert A"
LIVE_ARTIST = "Test Tones"
SONGS = [
    ("Sugar Plum Dance", ("Celesta Collective",), "Nutcracker Remixed", 330.0),
    ("Harbour Lights", ("The Quay Band",), "Night Ferry", 214.0),
    ("Neon Drive", ("Synth Avenue", "Mira K"), None, 187.0),
]


def tone(
    path: Path,
    seconds: float = 1.0,
    rate: int = 48_000,
    freq: float = 440.0,
    level: float = 0.2,
    codec: str = "pcm_s16le",
) -> float:
    """A sine tone written as real 16-bit mono audio through PyAV (WAV, or FLAC with
    codec="flac"); returns its length."""
    samples = int(seconds * rate)
    wave = level * np.sin(2 * np.pi * freq * np.arange(samples) / rate)
    pcm = (wave * 32767).astype(np.int16).reshape(1, -1)
    container = "flac" if codec == "flac" else "wav"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with av.open(str(path)) as probe:
        return float(probe.duration or 0) / av.time_base


async def _seed(url: str, audio: Path, song: Path) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            items = [
                TrackInput(
                    source="test",
                    source_key=f"e2e:{i}",
                    title=title,
                    artists=artists,
                    album=album,
                    genres=("Jazz",) if i == 1 else ("Electronic",),
                    duration_s=duration,
                    explicit=title == "Neon Drive",
                    audio_path=str(audio),
                )
                for i, (title, artists, album, duration) in enumerate(SONGS)
            ]
            # Metadata without audio: the console must not offer it.
            items.append(
                TrackInput(
                    source="test", source_key="e2e:paper", title="Neon Paper", artists=("X",)
                )
            )
            info = probe_audio_file(song)
            items.append(
                TrackInput(
                    source="test",
                    source_key="e2e:live",
                    title=LIVE_SONG,
                    artists=(LIVE_ARTIST,),
                    genres=("Test",),
                    duration_s=info.duration_s,
                    loudness_lufs=info.loudness_lufs,
                    audio_path=str(song),
                )
            )
            await CatalogWriter(db, SystemClock()).write(items)
            await db.commit()
    finally:
        await engine.dispose()


@dataclass
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("onair-e2e")
    settings = Settings(data_dir=data / "var")
    settings.data_dir.mkdir(parents=True)
    audio = data / "tone.wav"
    assert tone(audio) > 0.9
    song = data / "concert-a.flac"
    assert tone(song, seconds=60.0, freq=440.0, level=0.3, codec="flac") > 59.9

    def prepare() -> None:
        upgrade(settings.resolved_database_url)
        asyncio.run(_seed(settings.resolved_database_url, audio, song))

    # In a thread of its own: sync Playwright keeps an event loop running on this one, and both
    # the migrations and the seeding start loops of their own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(prepare).result()

    with serve(create_app(settings)) as running:
        yield LiveServer(url=running.url, settings=settings)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh profile in Debian's Chromium, in a zone away from UTC to prove local times."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800},
        locale="en-GB",
        timezone_id="Europe/Amsterdam",
    )
    context.set_default_timeout(5_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 kHz "voice" at 48 kHz for Chromium to use as its microphone (it loops the file)."""
    path = tmp_path_factory.mktemp("fake-mic") / "voice-1khz.wav"
    assert tone(path, seconds=4.0, freq=1000.0, level=0.3) > 3.9
    return path


@pytest.fixture
def media_browser(playwright: Playwright, fake_mic: Path) -> Iterator[Browser]:
    """Chromium whose microphone plays `fake_mic` and which allows it without asking; each
    `new_context()` of it is a fresh, separate profile (a host and a listener side by side)."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}",
        ],
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
