"""The program limiter, fed known signals frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from onair.studio.frames import FRAME_SAMPLES, Samples
from onair.studio.limiter import Limiter

from . import at, sine, tone_db

CEILING = 10.0 ** (-1.0 / 20.0)


def run(limiter: Limiter, signal: Samples, block: int = FRAME_SAMPLES) -> Samples:
    return np.concatenate(
        [limiter.process(signal[:, i : i + block]) for i in range(0, signal.shape[1], block)],
        axis=1,
    )


@pytest.mark.parametrize("freq", [440.0, 997.0, 5000.0])
def test_a_sine_6_db_over_full_scale_never_exceeds_the_ceiling(freq: float) -> None:
    limiter = Limiter()
    out = run(limiter, sine(freq, 1.0, dbfs=6.0))
    assert out.dtype == np.float32
    assert float(np.abs(out).max()) <= CEILING
    # Limited, not muted: the tone comes out just under the ceiling.
    assert tone_db(out[:, at(0.2) :], freq) > -3.0
    assert limiter.gain_reduction_db > 6.0


def test_a_lone_spike_is_caught_by_the_look_ahead() -> None:
    signal = np.zeros((2, at(0.2)), dtype=np.float32)
    signal[:, at(0.1)] = 2.0  # one sample at +6 dBFS out of silence
    signal[1, at(0.1) + 1] = -1.5
    out = run(Limiter(), signal)
    assert float(np.abs(out).max()) <= CEILING
    assert float(np.abs(out).max()) > 0.8


def test_a_quiet_sine_passes_unchanged_but_delayed() -> None:
    limiter = Limiter()
    signal = sine(440.0, 1.0, dbfs=-20.0)
    out = run(limiter, signal)
    delay = limiter.latency
    assert delay == at(0.005)
    np.testing.assert_array_equal(out[:, delay:], signal[:, :-delay])
    assert tone_db(out[:, at(0.1) :], 440.0) == pytest.approx(-20.0, abs=0.1)
    assert limiter.gain_reduction_db == 0.0


def test_the_gain_falls_smoothly_and_recovers_to_unity() -> None:
    # Constant levels make the gain curve visible: 0.5, then 2.0 for 50 ms, then 0.5 again.
    signal = np.full((2, at(1.0)), 0.5, dtype=np.float32)
    signal[:, at(0.2) : at(0.25)] = 2.0
    limiter = Limiter()
    out = run(limiter, signal)
    delay = limiter.latency
    gain = out[0, delay:] / signal[0, :-delay]

    assert float(np.abs(out).max()) <= CEILING
    assert float(np.abs(np.diff(gain)).max()) < 0.01  # a 5 ms ramp, never a step
    assert gain[at(0.1)] == 1.0
    assert gain[-1] == 1.0  # released within the second
    assert limiter.gain_reduction_db == 0.0


def test_the_result_does_not_depend_on_how_the_input_is_cut() -> None:
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal((2, at(0.5))) * 0.6).astype(np.float32)
    framed = run(Limiter(), signal)
    odd = run(Limiter(), signal, block=333)
    np.testing.assert_allclose(framed, odd, atol=1e-6)
    assert float(np.abs(framed).max()) <= CEILING
