"""Cutting replays from a recording made here: what a talk replay keeps, how it fades at each
cut, where chapters fall, and the plans for crossfaded songs and a show of only music."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from onair.replays.editing import FADE_S, GUARD_S, Played, Span, full_plan, render_mp3, talk_plan
from onair.replays.recorder import ShowRecorder, read_recording
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame
from tests.live import band_db, levels, runs
from tests.media import decode

pytestmark = pytest.mark.media

T0 = 1_800_000_000.0
VOICE, MUSIC = 1000.0, 440.0


def record(folder: Path, tone_at: list[tuple[float, float, float]], seconds: float) -> None:
    """A recording whose program is `freq` from `start` to `end` s (the voice elsewhere)."""
    recorder = ShowRecorder(1, folder, segment_s=2.5)
    recorder.start()
    for k in range(round(seconds * 50)):
        t = k * 0.02
        freq = next((f for a, b, f in tone_at if a <= t < b), VOICE)
        n = k * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)
        wave = (0.5 * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.float32)
        recorder.push(ProgramFrame(k * FRAME_SAMPLES, T0 + t, np.stack([wave, wave])))
    recorder.close()


def mp3_seconds(path: Path) -> np.ndarray:
    return decode(path.read_bytes(), "mp3")


def test_a_talk_replay_drops_the_song_and_fades_at_the_cuts(tmp_path: Path) -> None:
    record(tmp_path / "rec", [(4.0, 9.0, MUSIC)], 14.0)
    segments = read_recording(tmp_path / "rec")
    recorded = Span(segments[0].wallclock, segments[-1].end_wallclock)
    plan = talk_plan(recorded, [Played(T0 + 4.0, T0 + 9.0, "Band - Song")])
    out = tmp_path / "talk.mp3"
    rendered = render_mp3(segments, plan, out, title="Talk", artist="Host")
    expected = 14.0 - 5.0 - 2 * GUARD_S
    assert rendered.duration_s == pytest.approx(expected, abs=0.03)
    assert rendered.bytes == out.stat().st_size
    assert rendered.chapters == [
        {"startTime": 0.0, "title": "Opening"},
        {"startTime": pytest.approx(4.0 - GUARD_S, abs=0.02), "title": "After Band - Song"},
    ]
    signal = mp3_seconds(out)
    assert band_db(signal, MUSIC) < -70
    # The voice fades out into the cut and back in after it, over FADE_S each.
    cut = 4.0 - GUARD_S
    envelope = np.abs(signal)
    window = int(0.02 * SAMPLE_RATE)
    delay = 1105  # libmp3lame's priming samples at the start of the decoded stream

    def peak(at: float) -> float:
        i = delay + int(at * SAMPLE_RATE)
        return float(envelope[i - window // 2 : i + window // 2].max())

    assert peak(cut - FADE_S - 0.1) == pytest.approx(0.5, abs=0.05)
    assert peak(cut - FADE_S / 2) == pytest.approx(0.25, abs=0.06)
    assert peak(cut) < 0.05
    assert peak(cut + FADE_S / 2) == pytest.approx(0.25, abs=0.06)
    assert peak(cut + FADE_S + 0.1) == pytest.approx(0.5, abs=0.05)
    # The MP3 says who and what it is.
    with av.open(io.BytesIO(out.read_bytes()), format="mp3") as container:
        assert container.metadata.get("title") == "Talk"
        assert container.metadata.get("artist") == "Host"


def test_a_full_replay_keeps_everything_with_a_chapter_per_song(tmp_path: Path) -> None:
    record(tmp_path / "rec", [(3.0, 8.0, MUSIC), (7.0, 11.0, 660.0)], 14.0)
    segments = read_recording(tmp_path / "rec")
    recorded = Span(segments[0].wallclock, segments[-1].end_wallclock)
    plays = [Played(T0 + 3.0, T0 + 8.0, "A - One"), Played(T0 + 7.0, T0 + 11.0, "B - Two")]
    out = tmp_path / "full.mp3"
    rendered = render_mp3(segments, full_plan(recorded, plays), out, title="Full", artist="H")
    assert rendered.duration_s == pytest.approx(14.0, abs=0.001)
    assert rendered.chapters == [
        {"startTime": 0.0, "title": "Opening"},
        {"startTime": 3.0, "title": "A - One"},
        {"startTime": 7.0, "title": "B - Two"},
        {"startTime": 11.0, "title": "Talk"},
    ]
    signal = mp3_seconds(out)[1105:]
    (heard,) = runs(levels(signal, MUSIC) > -20)
    assert heard == pytest.approx((3.0, 8.0), abs=0.1)  # the first tone wins the overlap


def test_crossfaded_songs_are_one_cut_and_slivers_of_talk_go_with_them() -> None:
    recorded = Span(0.0, 100.0)
    plays = [
        Played(0.5, 30.0, "A - One"),  # starts 0.5 s in: too little talk before it to keep
        Played(27.0, 50.0, "B - Two"),  # crossfaded into
        Played(50.8, 70.0, "C - Three"),  # 0.8 s of silence between: not talk
    ]
    plan = talk_plan(recorded, plays)
    assert plan.cuts == (Span(0.0, 70.0 + GUARD_S),)
    assert [c.title for c in plan.chapters] == ["After A - One … C - Three (3 songs)"]
    assert plan.chapters[0].at == 70.0 + GUARD_S


def test_a_show_of_only_music_has_no_talk_to_replay(tmp_path: Path) -> None:
    record(tmp_path / "rec", [(0.0, 5.0, MUSIC)], 5.0)
    segments = read_recording(tmp_path / "rec")
    recorded = Span(segments[0].wallclock, segments[-1].end_wallclock)
    plan = talk_plan(recorded, [Played(T0 - 1.0, T0 + 4.5, "A - One")])
    with pytest.raises(ValueError, match="empty"):
        render_mp3(segments, plan, tmp_path / "talk.mp3", title="t", artist="h")
    assert list(tmp_path.glob("talk.mp3*")) == []
