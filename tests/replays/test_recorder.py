"""The recorder on its own: every frame of a fast burst reaches the disk, losslessly; a hole in
the program starts a new file; the file open at a crash is read back as far as it got."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from onair.media.feed import ProgramFeed
from onair.replays.recorder import (
    QUEUE_FRAMES,
    ShowRecorder,
    read_recording,
    segment_audio,
    start_recording,
)
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame

pytestmark = pytest.mark.media

T0 = 1_800_000_000.0


def frames(count: int, *, first: int = 0, freq: float = 440.0) -> list[ProgramFrame]:
    out = []
    for k in range(first, first + count):
        n = k * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)
        wave = (0.5 * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.float32)
        out.append(
            ProgramFrame(k * FRAME_SAMPLES, T0 + n[0] / SAMPLE_RATE, np.stack([wave, -wave]))
        )
    return out


def recorded(folder: Path) -> np.ndarray:
    return np.concatenate(
        [np.concatenate(list(segment_audio(s.path)), axis=1) for s in read_recording(folder)],
        axis=1,
    )


def test_a_burst_of_a_minute_is_written_whole_and_lossless(tmp_path: Path) -> None:
    feed = ProgramFeed(7)
    recorder = start_recording(feed, tmp_path, segment_s=10.0)
    sent = frames(QUEUE_FRAMES)  # a minute of program, as fast as the loop can publish it
    started = time.perf_counter()
    for frame in sent:
        feed.publish(frame)
    publishing = time.perf_counter() - started
    feed.unsubscribe(recorder)
    recorder.close()
    assert recorder.dropped == 0 and not recorder.failed
    assert publishing < 1.0, f"publishing a minute took {publishing:.2f} s: push must not wait"
    folder = tmp_path / "show-7"
    segments = read_recording(folder)
    assert [s.samples for s in segments] == [10 * SAMPLE_RATE] * 6
    assert [s.first_pts for s in segments] == [i * 10 * SAMPLE_RATE for i in range(6)]
    assert [s.wallclock for s in segments] == pytest.approx([T0 + 10 * i for i in range(6)])
    audio = recorded(folder)
    want = np.concatenate([f.samples for f in sent], axis=1)
    assert audio.shape == want.shape
    # 16-bit lossless: nothing but the quantisation step differs.
    assert np.abs(audio - want).max() <= 1.5 / 32768


def test_push_never_waits_for_a_stalled_disk(tmp_path: Path) -> None:
    recorder = ShowRecorder(1, tmp_path)  # its writer never started: the disk "stalls"
    started = time.perf_counter()
    for frame in frames(QUEUE_FRAMES + 25):
        recorder.push(frame)
    assert time.perf_counter() - started < 1.0
    assert recorder.dropped == 25


def test_a_hole_in_the_program_starts_a_new_file_at_the_right_time(tmp_path: Path) -> None:
    recorder = ShowRecorder(3, tmp_path / "show-3")
    recorder.start()
    for frame in [*frames(100), *frames(50, first=150)]:  # one second lost after two
        recorder.push(frame)
    recorder.close()
    first, second = read_recording(tmp_path / "show-3")
    assert (first.first_pts, first.samples) == (0, 100 * FRAME_SAMPLES)
    assert (second.first_pts, second.samples) == (150 * FRAME_SAMPLES, 50 * FRAME_SAMPLES)
    assert second.wallclock == pytest.approx(T0 + 3.0)


def test_each_studio_run_records_into_a_folder_of_its_own(tmp_path: Path) -> None:
    for run in range(2):
        recorder = ShowRecorder(4, tmp_path)
        recorder.start()
        for frame in frames(50, first=run * 1000):
            recorder.push(frame)
        recorder.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001", "0002"]
    assert [s.first_pts for s in read_recording(tmp_path)] == [0, 1000 * FRAME_SAMPLES]


def test_the_file_open_at_a_crash_is_read_as_far_as_it_got(tmp_path: Path) -> None:
    recorder = ShowRecorder(5, tmp_path, segment_s=2.0)
    recorder.start()
    for frame in frames(250):  # 5 s: two whole files and one of 1 s
        recorder.push(frame)
    recorder.close()
    last = sorted(tmp_path.glob("*/seg-*.json"))[-1]
    # As the node left it: no sample count yet, and the file torn off mid-frame.
    meta = json.loads(last.read_text())
    meta["samples"] = None
    last.write_text(json.dumps(meta))
    flac = last.with_suffix(".flac")
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) * 2 // 3])
    segments = read_recording(tmp_path)
    assert [s.samples for s in segments[:2]] == [2 * SAMPLE_RATE] * 2
    salvaged = segments[2].samples
    assert 0.4 * SAMPLE_RATE < salvaged < SAMPLE_RATE, salvaged
