"""BS.1770 / EBU R128 integrated loudness, checked against the EBU's own test cases and ffmpeg."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from onair.studio.loudness import LoudnessMeter, integrated_loudness, k_weighting_sos
from tests.conftest import shared_data

Signal = npt.NDArray[np.float64]


def _shared_audio_dir() -> Path:
    return shared_data() / "audio"


def _tone(dbfs: float, seconds: float, rate: int = 48_000, channels: int = 2) -> Signal:
    """A 997 Hz sine whose peak is ``dbfs``: 997 Hz, unlike 1 kHz, visits every sample phase."""
    t = np.arange(round(seconds * rate)) / rate
    sine = 10.0 ** (dbfs / 20.0) * np.sin(2.0 * np.pi * 997.0 * t)
    return np.tile(sine, (channels, 1))


def _silence(seconds: float, rate: int = 48_000, channels: int = 2) -> Signal:
    return np.zeros((channels, round(seconds * rate)))


def test_k_weighting_matches_the_bs1770_table_at_48k() -> None:
    expected = np.array(
        [
            [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
             0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
        ]
    )  # fmt: skip
    np.testing.assert_allclose(k_weighting_sos(48_000), expected, atol=1e-8)


@pytest.mark.parametrize("rate", [48_000, 44_100, 32_000, 96_000])
@pytest.mark.parametrize("dbfs", [-23.0, -33.0, -20.0])
def test_stereo_sine_reads_its_peak_level(rate: int, dbfs: float) -> None:
    # EBU Tech 3341 cases 1 and 2: a stereo 1 kHz sine at -23 (-33) dBFS reads -23 (-33) LUFS.
    assert integrated_loudness(_tone(dbfs, 5.0, rate), rate) == pytest.approx(dbfs, abs=0.1)


def test_mono_counts_one_channel() -> None:
    # One channel carries half the power of the same sine in both channels.
    mono = integrated_loudness(_tone(-23.0, 5.0, channels=1), 48_000)
    assert mono == pytest.approx(-23.0 - 10 * math.log10(2), abs=0.05)


def test_float32_input_is_accepted() -> None:
    assert integrated_loudness(_tone(-23.0, 2.0).astype(np.float32), 48_000) == pytest.approx(
        -23.0, abs=0.1
    )


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        # EBU Tech 3341 case 3: the -36 dBFS parts fall below the relative gate.
        ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
        # Case 4: -72 dBFS is also below the absolute gate.
        ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
        # Case 5: the -26 dBFS parts pass the relative gate and count.
        ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
    ],
)
def test_ebu_tech_3341_gating_cases(segments: list[tuple[float, float]], expected: float) -> None:
    program = np.concatenate([_tone(dbfs, seconds) for dbfs, seconds in segments], axis=1)
    assert integrated_loudness(program, 48_000) == pytest.approx(expected, abs=0.1)


def test_silence_after_a_loud_part_does_not_lower_the_reading() -> None:
    # Ungated, 60 s of silence after 20 s of tone would read 6 LU lower. The three blocks that
    # straddle the edge rightly pass the gate, which costs 0.03 LU over 20 s.
    loud = _tone(-20.0, 20.0)
    program = np.concatenate([loud, _silence(60.0)], axis=1)
    assert integrated_loudness(program, 48_000) == pytest.approx(
        integrated_loudness(loud, 48_000), abs=0.05
    )


def test_hiss_below_the_absolute_gate_does_not_count() -> None:
    rng = np.random.default_rng(7)
    hiss = rng.normal(0.0, 10 ** (-85 / 20), size=(2, 60 * 48_000))
    program = np.concatenate([_tone(-20.0, 20.0), hiss], axis=1)
    assert integrated_loudness(program, 48_000) == pytest.approx(-20.0, abs=0.1)


def test_silence_and_too_short_audio_read_minus_infinity() -> None:
    assert integrated_loudness(_silence(10.0), 48_000) == -math.inf
    # Less than one 400 ms block holds no complete gating block.
    assert integrated_loudness(_tone(-20.0, 0.35), 48_000) == -math.inf
    assert LoudnessMeter(48_000).integrated == -math.inf


def test_surround_weight_scales_a_channel() -> None:
    program = _tone(-23.0, 5.0, channels=1)
    weighted = integrated_loudness(program, 48_000, channel_weights=[1.41])
    assert weighted - integrated_loudness(program, 48_000) == pytest.approx(
        10 * math.log10(1.41), abs=1e-6
    )


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_chunked_meter_equals_one_shot(rate: int) -> None:
    rng = np.random.default_rng(1770)
    program = np.concatenate(
        [
            _tone(-18.0, 1.3, rate),
            rng.uniform(-0.3, 0.3, size=(2, rate)),
            _silence(0.7, rate),
            _tone(-30.0, 1.9, rate),
        ],
        axis=1,
    )
    # Chunk sizes that straddle every boundary: empty, single samples, just under a 100 ms step,
    # across several blocks.
    sizes = [0, 1, 1, 7, rate // 10 - 1, 3, rate // 2 + 13, 0, 1]
    sizes += [int(size) for size in rng.integers(1, rate // 3, size=20)]
    meter = LoudnessMeter(rate)
    position = 0
    for size in sizes:
        meter.add(program[:, position : position + size])
        position += size
    meter.add(program[:, position:])

    assert position < program.shape[1], "the chunks should not already cover the program"
    assert meter.duration == pytest.approx(program.shape[1] / rate)
    assert meter.integrated == pytest.approx(integrated_loudness(program, rate), abs=1e-9)


def test_meter_rejects_the_wrong_channel_count() -> None:
    meter = LoudnessMeter(48_000, channels=2)
    with pytest.raises(ValueError, match=r"shape \(2, n\)"):
        meter.add(np.zeros((1, 480)))
    with pytest.raises(ValueError):
        meter.add(np.zeros(480))


def test_too_low_a_sample_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="too low"):
        LoudnessMeter(4_000)


def _ffmpeg_integrated(path: Path, ffmpeg: str) -> float:
    result = subprocess.run(
        [ffmpeg, "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    summary = result.stderr.rpartition("Summary:")[2]
    match = re.search(r"I:\s*(-?\d+(?:\.\d+)?) LUFS", summary)
    assert match is not None, f"no integrated loudness in ffmpeg's output:\n{result.stderr[-500:]}"
    return float(match.group(1))


def _decode_native(path: Path) -> tuple[Signal, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        planes = [frame.to_ndarray() for frame in container.decode(stream)]
        return np.concatenate(planes, axis=1).astype(np.float64), stream.codec_context.sample_rate


def _shared_recordings() -> list[Path]:
    return sorted(_shared_audio_dir().glob("*.ogg"))


@pytest.mark.media
@pytest.mark.parametrize(
    "path", _shared_recordings() or [None], ids=lambda p: getattr(p, "name", "none")
)
def test_agrees_with_ffmpeg_on_real_recordings(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"shared recordings not found in {_shared_audio_dir()} (set ONAIR_SHARED_DATA)")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed, so there is no reference measurement")
    # Decoded at the file's own rate (16 kHz mono, 44.1 kHz stereo), so this also checks the
    # filter derivation away from 48 kHz.
    samples, rate = _decode_native(path)
    ours = integrated_loudness(samples, rate)
    assert ours == pytest.approx(_ffmpeg_integrated(path, ffmpeg), abs=0.3)
