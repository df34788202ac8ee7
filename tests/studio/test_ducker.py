"""Ducking the music under the voice: 1 kHz voice bursts over a 440 Hz song."""

from __future__ import annotations

import numpy as np
import pytest

from onair.studio.ducker import Ducker
from onair.studio.frames import FRAME_SAMPLES, Samples

from . import at, sine, tone_db

MUSIC_DB = -12.0


def voice(seconds: float, bursts: list[tuple[float, float]]) -> Samples:
    """A 1 kHz "voice" at -20 dBFS during each (start, end) burst, silence elsewhere."""
    tone = sine(1000.0, seconds, dbfs=-20.0)
    keyed = np.zeros_like(tone)
    for start, end in bursts:
        keyed[:, at(start) : at(end)] = tone[:, at(start) : at(end)]
    return keyed


def duck(ducker: Ducker, music: Samples, key: Samples) -> tuple[Samples, np.ndarray]:
    out = music.copy()
    gains = []
    for i in range(0, music.shape[1], FRAME_SAMPLES):
        frame = out[:, i : i + FRAME_SAMPLES]
        gains.append(ducker.gain(key[:, i : i + FRAME_SAMPLES]))
        frame *= gains[-1]
    return out, np.concatenate(gains)


def test_music_dips_about_12_db_under_the_voice_and_comes_back() -> None:
    ducker = Ducker()
    music = sine(440.0, 5.0, dbfs=MUSIC_DB)
    out, _ = duck(ducker, music, voice(5.0, [(1.0, 2.0)]))

    before = tone_db(out[:, at(0.2) : at(0.9)], 440.0)
    during = tone_db(out[:, at(1.15) : at(2.0)], 440.0)
    assert before == pytest.approx(MUSIC_DB, abs=0.1)
    assert before - during >= 9.0
    assert before - during == pytest.approx(12.0, abs=0.5)
    # Back to full once the hold (0.5 s) and the release (0.8 s) have passed.
    after = tone_db(out[:, at(3.35) : at(5.0)], 440.0)
    assert after == pytest.approx(MUSIC_DB, abs=0.1)
    assert ducker.gain_reduction_db == 0.0


def test_a_pause_between_words_does_not_release() -> None:
    ducker = Ducker()
    music = sine(440.0, 3.0, dbfs=MUSIC_DB)
    _, gains = duck(ducker, music, voice(3.0, [(0.5, 1.0), (1.2, 1.6)]))

    gap = gains[at(1.0) : at(1.2)]
    assert 20 * np.log10(gap.max()) == pytest.approx(-12.0, abs=0.1)  # no pumping
    assert 20 * np.log10(gains[at(0.7) : at(1.6)].max()) < -11.9


def test_the_gain_curve_has_no_clicks() -> None:
    ducker = Ducker()
    music = sine(440.0, 4.0, dbfs=MUSIC_DB)
    _, gains = duck(ducker, music, voice(4.0, [(0.5, 0.8), (1.0, 1.05), (2.0, 2.5)]))
    assert float(np.abs(np.diff(gains)).max()) < 5e-4
    assert gains.min() >= 10 ** (-12.0 / 20) - 1e-6
    assert gains.max() <= 1.0


def test_quiet_room_noise_does_not_duck() -> None:
    ducker = Ducker()
    noise = (np.random.default_rng(3).standard_normal((2, at(2.0))) * 10 ** (-55 / 20)).astype(
        np.float32
    )
    _, gains = duck(ducker, sine(440.0, 2.0), noise)
    assert gains.min() == 1.0


def test_a_deeper_setting_glides_into_place() -> None:
    ducker = Ducker(depth_db=6.0)
    key = voice(2.0, [(0.0, 2.0)])
    _, gains = duck(ducker, sine(440.0, 2.0), key)
    assert 20 * np.log10(gains[at(0.9)]) == pytest.approx(-6.0, abs=0.05)
    ducker.depth_db = 18.0
    _, deeper = duck(ducker, sine(440.0, 1.0), key[:, : at(1.0)])
    assert 20 * np.log10(deeper[-1]) == pytest.approx(-18.0, abs=0.05)
    assert float(np.abs(np.diff(np.concatenate([gains, deeper]))).max()) < 5e-4
