"""The equal-power fade curves the deck segues with, evaluated at any sample positions."""

from __future__ import annotations

import numpy as np

from onair.studio.crossfade import fade_in_gain, fade_out_gain

LENGTH = 144_000  # a 3 s segue at 48 kHz


def positions(start: int, stop: int) -> np.ndarray:
    return np.arange(start, stop, dtype=np.int64)


def test_the_two_curves_keep_the_power_constant_through_the_fade() -> None:
    span = positions(-960, LENGTH + 960)
    rising, falling = fade_in_gain(span, 0, LENGTH), fade_out_gain(span, 0, LENGTH)
    assert rising.dtype == np.float32 and falling.dtype == np.float32
    power = rising.astype(np.float64) ** 2 + falling.astype(np.float64) ** 2
    assert np.abs(power - 1.0).max() < 1e-6
    assert np.all(np.diff(rising) >= 0) and np.all(np.diff(falling) <= 0)


def test_the_fades_rest_at_exactly_silence_and_full_level_outside_the_fade() -> None:
    before, after = positions(-2000, 0), positions(LENGTH, LENGTH + 2000)
    assert np.all(fade_in_gain(before, 0, LENGTH) == 0.0)
    assert np.all(fade_in_gain(after, 0, LENGTH) == 1.0)
    assert np.all(fade_out_gain(before, 0, LENGTH) == 1.0)
    assert np.all(fade_out_gain(after, 0, LENGTH) == 0.0)  # not a hair below or above zero


def test_the_curve_is_the_same_wherever_a_frame_boundary_cuts_it() -> None:
    whole = fade_in_gain(positions(0, LENGTH), 0, LENGTH)
    pieces = [
        fade_in_gain(positions(k, min(k + 960, LENGTH)), 0, LENGTH) for k in range(0, LENGTH, 960)
    ]
    assert np.array_equal(np.concatenate(pieces), whole)
    midpoint = fade_out_gain(positions(LENGTH // 2, LENGTH // 2 + 1), 0, LENGTH)[0]
    assert abs(float(midpoint) - np.sqrt(0.5)) < 1e-6  # -3 dB halfway, as equal power has it


def test_a_zero_length_fade_is_a_cut() -> None:
    span = positions(-3, 3)
    assert fade_in_gain(span, 0, 0).tolist() == [0, 0, 0, 1, 1, 1]
    assert fade_out_gain(span, 0, 0).tolist() == [1, 1, 1, 0, 0, 0]
