"""The music deck, driven frame by frame with tone "songs" written to disk and decoded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from onair.studio.deck import (
    DeckEvent,
    DeckTrack,
    MusicDeck,
    QueueEmpty,
    TrackEnded,
    TrackFailed,
    TrackStarted,
    loudness_gain_db,
)
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE

from . import (
    at,
    audible_span,
    longest_silence,
    render,
    rms_db,
    sine,
    tone_db,
    tone_track,
    windows,
    write_audio,
)

pytestmark = pytest.mark.media


class Recorder:
    def __init__(self) -> None:
        self.events: list[DeckEvent] = []

    def __call__(self, event: DeckEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[DeckEvent]) -> list[DeckEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def started(self) -> list[TrackStarted]:
        return [e for e in self.events if isinstance(e, TrackStarted)]

    def ended(self) -> list[TrackEnded]:
        return [e for e in self.events if isinstance(e, TrackEnded)]


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def deck(events: Recorder) -> Iterator[MusicDeck]:
    deck = MusicDeck(on_event=events, decode_in_background=False)
    yield deck
    deck.close()


def test_loudness_gain_moves_toward_the_target_within_limits() -> None:
    assert loudness_gain_db(-10.0) == pytest.approx(-6.0)
    assert loudness_gain_db(-20.0, -16.0) == pytest.approx(4.0)
    assert loudness_gain_db(-60.0) == 12.0  # a near-silent master is not boosted into hiss
    assert loudness_gain_db(10.0) == -20.0
    assert loudness_gain_db(None) == 0.0
    assert loudness_gain_db(float("-inf")) == 0.0


def test_a_track_plays_in_full(tmp_path: Path, deck: MusicDeck, events: Recorder) -> None:
    track = tone_track(tmp_path, "a", 440.0, 2.0)
    deck.set_queue([track])
    deck.play()
    out = render(deck.next_frame, 3.0)

    start, end = audible_span(out)
    assert start < FRAME_SAMPLES  # play() from stop fades in over one frame, against a click
    assert abs((end - start) - at(2.0)) <= FRAME_SAMPLES
    assert tone_db(out[:, at(0.5) : at(1.5)], 440.0) == pytest.approx(-12.0, abs=0.5)
    assert events.started() == [TrackStarted(track, 0)]
    [ended] = events.ended()
    assert ended.track == track and not ended.skipped
    assert ended.pts == at(2.0)
    assert ended.seconds_played == pytest.approx(2.0, abs=0.001)
    assert deck.underruns == 0


def test_crossfade_is_equal_power_and_starts_where_it_is_heard(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 5.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 5.0, track_id=2, queue_item_id=2)
    deck.set_queue([first, second])
    deck.play()
    out = render(deck.next_frame, 9.0)

    # The 3 s segue spans the first song's last 3 s: 2 s to 5 s of program.
    [_, incoming] = events.started()
    assert incoming == TrackStarted(second, at(2.0))
    first_end = next(e for e in events.ended() if e.track == first)
    assert first_end.pts == at(5.0)

    middle = out[:, at(3.0) : at(4.0)]
    assert tone_db(middle, 440.0) > -20.0
    assert tone_db(middle, 660.0) > -20.0
    steady = rms_db(out[:, at(0.5) : at(1.5)])
    levels = [rms_db(w) for w in windows(out[:, at(1.0) : at(7.0)], 0.1)]
    assert max(levels) - steady < 1.0
    assert steady - min(levels) < 1.0  # well within the 3 dB a linear fade would lose

    # Heard from where the event says, and not before.
    before = out[:, at(2.0) - at(0.5) : at(2.0)]
    assert tone_db(before, 660.0) < -80.0
    just_after = out[:, at(2.0) : at(2.3)]
    assert tone_db(just_after, 660.0) > -50.0
    assert deck.underruns == 0


def test_songs_at_different_levels_come_out_equally_loud(tmp_path: Path, events: Recorder) -> None:
    # The EBU R128 meter lands separately; until it does this test has nothing to measure with.
    integrated_loudness = pytest.importorskip("onair.studio.loudness").integrated_loudness
    loud_tone = sine(440.0, 4.0, dbfs=-6.0)
    quiet_tone = sine(660.0, 4.0, dbfs=-24.0)
    loud = DeckTrack(
        1, 1, write_audio(tmp_path / "loud.flac", loud_tone), "Loud", ("A",),
        integrated_loudness(loud_tone, SAMPLE_RATE), 4.0,
    )  # fmt: skip
    quiet = DeckTrack(
        2, 2, write_audio(tmp_path / "quiet.flac", quiet_tone), "Quiet", ("B",),
        integrated_loudness(quiet_tone, SAMPLE_RATE), 4.0,
    )  # fmt: skip
    assert loud.loudness_lufs is not None and quiet.loudness_lufs is not None
    assert loud.loudness_lufs - quiet.loudness_lufs == pytest.approx(18.0, abs=0.5)

    deck = MusicDeck(crossfade_s=1.0, on_event=events, decode_in_background=False)
    try:
        deck.set_queue([loud, quiet])
        deck.play()
        out = render(deck.next_frame, 7.5)
    finally:
        deck.close()

    first = integrated_loudness(out[:, at(0.2) : at(2.8)], SAMPLE_RATE)
    second = integrated_loudness(out[:, at(4.2) : at(6.8)], SAMPLE_RATE)
    assert abs(first - second) < 1.0
    assert first == pytest.approx(-16.0, abs=1.0)


def test_pause_is_silent_and_play_resumes_where_it_paused(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    track = tone_track(tmp_path, "a", 440.0, 3.0)
    deck.set_queue([track])
    deck.play()
    before = render(deck.next_frame, 1.0)
    deck.pause()
    paused = render(deck.next_frame, 1.0)
    position = deck.position_s
    deck.play()
    after = render(deck.next_frame, 3.0)

    # The pause fades within its first frame, then nothing is heard and nothing is consumed.
    assert np.abs(paused[:, FRAME_SAMPLES:]).max() == 0.0
    assert np.abs(paused[:, FRAME_SAMPLES - 1]).max() < 0.01
    assert position == pytest.approx(1.0 + FRAME_SAMPLES / SAMPLE_RATE, abs=0.021)
    heard = np.count_nonzero(np.abs(before).max(axis=0) > 1e-3) + np.count_nonzero(
        np.abs(np.concatenate([paused, after], axis=1)).max(axis=0) > 1e-3
    )
    assert abs(heard - at(3.0)) < 2 * FRAME_SAMPLES
    [ended] = events.ended()
    assert ended.seconds_played == pytest.approx(3.0, abs=0.001)
    assert ended.pts == pytest.approx(at(4.0), abs=2 * FRAME_SAMPLES)
    assert tone_db(after[:, at(0.1) : at(1.0)], 440.0) == pytest.approx(-12.0, abs=0.5)


def test_skip_fades_out_quickly_into_the_next_song(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 10.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 5.0, track_id=2, queue_item_id=2)
    deck.set_queue([first, second])
    deck.play()
    render(deck.next_frame, 2.0)
    skip_pts = deck.pts
    deck.skip()
    out = render(deck.next_frame, 1.0)

    assert tone_db(out[:, at(0.15) : at(0.95)], 440.0) < -90.0
    assert tone_db(out[:, at(0.15) : at(0.95)], 660.0) == pytest.approx(-12.0, abs=0.5)
    assert longest_silence(out) < at(0.01)
    skipped = events.ended()[0]
    assert skipped.track == first and skipped.skipped
    assert skipped.seconds_played == pytest.approx(2.0 + 0.1, abs=0.021)
    assert events.started()[1] == TrackStarted(second, skip_pts)
    assert deck.now_playing == second


def test_an_unreadable_track_is_reported_and_the_next_follows_without_a_gap(
    tmp_path: Path, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 3.0, track_id=1, queue_item_id=1)
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(np.random.default_rng(1).bytes(50_000))
    broken = DeckTrack(2, 2, garbage, "Broken", ("X",), None, 180.0)
    third = tone_track(tmp_path, "c", 660.0, 3.0, track_id=3, queue_item_id=3)

    deck = MusicDeck(crossfade_s=1.0, on_event=events, decode_in_background=False)
    try:
        deck.set_queue([first, broken, third])
        deck.play()
        out = render(deck.next_frame, 6.0)
    finally:
        deck.close()

    [failed] = events.of(TrackFailed)
    assert isinstance(failed, TrackFailed) and failed.track == broken
    assert [e.track for e in events.started()] == [first, third]
    start, end = audible_span(out)
    assert longest_silence(out[:, start:end]) < at(0.1)
    assert tone_db(out[:, at(3.5) : at(4.5)], 660.0) == pytest.approx(-12.0, abs=0.5)


def test_a_decode_error_mid_song_segues_into_the_next(tmp_path: Path, events: Recorder) -> None:
    whole = write_audio(tmp_path / "whole.flac", sine(440.0, 6.0))
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(data[: len(data) // 2])  # cut mid-frame: FFmpeg reports bad data
    broken = DeckTrack(1, 1, truncated, "Cut short", ("X",), None, 6.0)
    second = tone_track(tmp_path, "b", 660.0, 3.0, track_id=2, queue_item_id=2)

    deck = MusicDeck(crossfade_s=1.0, on_event=events, decode_in_background=False)
    try:
        deck.set_queue([broken, second])
        deck.play()
        out = render(deck.next_frame, 6.0)
    finally:
        deck.close()

    [failed] = events.of(TrackFailed)
    assert isinstance(failed, TrackFailed) and "decode error" in failed.reason
    first_end = events.ended()[0]
    assert first_end.track == broken
    assert 1.5 < first_end.seconds_played < 4.0
    assert events.started()[1].track == second
    start, end = audible_span(out)
    assert longest_silence(out[:, start:end]) < at(0.1)


def test_a_dry_queue_turns_to_the_auto_dj(tmp_path: Path, events: Recorder) -> None:
    first = tone_track(tmp_path, "a", 440.0, 3.0, track_id=1, queue_item_id=1)
    pick = tone_track(tmp_path, "auto", 660.0, 3.0, track_id=9, queue_item_id=None)
    asked: list[int] = []

    def auto_dj() -> DeckTrack | None:
        asked.append(deck.pts)
        return pick if len(asked) == 1 else None

    deck = MusicDeck(
        crossfade_s=1.0, on_event=events, on_need_track=auto_dj, decode_in_background=False
    )
    try:
        deck.set_queue([first])
        deck.play()
        out = render(deck.next_frame, 7.0)
    finally:
        deck.close()

    assert asked and asked[0] < at(2.0)
    [dry] = events.of(QueueEmpty)
    assert isinstance(dry, QueueEmpty) and dry.pts == asked[0]
    assert events.started() == [TrackStarted(first, 0), TrackStarted(pick, at(2.0), True)]
    assert tone_db(out[:, at(3.2) : at(4.8)], 660.0) == pytest.approx(-12.0, abs=0.5)
    # Once the pick has played and the auto-DJ has nothing more, the deck falls silent.
    assert np.abs(out[:, at(5.1) :]).max() == 0.0


def test_a_reordered_queue_replaces_the_prepared_song(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 4.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 4.0, track_id=2, queue_item_id=2)
    third = tone_track(tmp_path, "c", 880.0, 4.0, track_id=3, queue_item_id=3)
    deck.set_queue([first, second, third])
    deck.play()
    render(deck.next_frame, 0.5)
    deck.set_queue([third, second])
    assert deck.upcoming == (third, second)
    render(deck.next_frame, 1.0)  # the 3 s segue out of the 4 s song starts at 1 s
    assert [e.track for e in events.started()] == [first, third]
    assert deck.upcoming == (second,)


def test_the_fader_glides_without_steps(tmp_path: Path, deck: MusicDeck) -> None:
    # A constant (DC) song makes the gain curve itself visible in the output.
    write_audio(tmp_path / "dc.flac", np.full((2, at(3.0)), 0.5, dtype=np.float32))
    deck.set_queue([DeckTrack(1, 1, tmp_path / "dc.flac", "DC", ("A",), None, 3.0)])
    deck.play()
    render(deck.next_frame, 0.5)
    deck.set_level_db(-12.0)
    out = render(deck.next_frame, 0.5)

    level = out[0]
    assert np.abs(np.diff(level)).max() < 1e-3
    assert 20 * np.log10(level[-1] / 0.5) == pytest.approx(-12.0, abs=0.1)
    assert deck.level_db == pytest.approx(-12.0)


def test_background_decoding_keeps_ahead_of_playback(tmp_path: Path, events: Recorder) -> None:
    first = tone_track(tmp_path, "a", 440.0, 2.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 2.0, track_id=2, queue_item_id=2)
    deck = MusicDeck(crossfade_s=0.5, on_event=events)
    try:
        deck.set_queue([first, second])
        deck.play()
        frames = []
        # Four times faster than real time, which still leaves the decoder plenty of slack.
        for _ in range(round(4.0 * SAMPLE_RATE / FRAME_SAMPLES)):
            frames.append(deck.next_frame())
            time.sleep(0.005)
    finally:
        deck.close()
    out = np.concatenate(frames, axis=1)

    assert [e.track for e in events.started()] == [first, second]
    start, end = audible_span(out)
    assert longest_silence(out[:, start:end]) < at(0.01)
    assert abs((end - start) - at(3.5)) <= 2 * FRAME_SAMPLES


def test_skip_during_a_crossfade_moves_on_to_the_song_after(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    songs = [
        tone_track(tmp_path, name, freq, 5.0, track_id=i, queue_item_id=i)
        for i, (name, freq) in enumerate([("a", 440.0), ("b", 660.0), ("c", 880.0)], 1)
    ]
    deck.set_queue(songs)
    deck.play()
    render(deck.next_frame, 3.0)  # a → b is halfway
    deck.skip()
    out = render(deck.next_frame, 1.0)

    settled = out[:, at(0.2) :]
    assert tone_db(settled, 880.0) == pytest.approx(-12.0, abs=0.5)
    assert tone_db(settled, 440.0) < -90.0 and tone_db(settled, 660.0) < -90.0
    assert longest_silence(out) < at(0.01)
    assert {e.track.title for e in events.ended()} == {"a", "b"}
    assert all(e.skipped for e in events.ended())
    assert deck.now_playing == songs[2]


def test_skip_while_paused_ends_the_song_and_the_next_starts_on_play(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 5.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 5.0, track_id=2, queue_item_id=2)
    deck.set_queue([first, second])
    deck.play()
    render(deck.next_frame, 1.0)
    deck.pause()
    render(deck.next_frame, 0.5)
    deck.skip()
    silent = render(deck.next_frame, 0.5)
    resume_pts = deck.pts
    deck.play()
    out = render(deck.next_frame, 1.0)

    assert not silent.any()
    assert events.ended()[0].track == first and events.ended()[0].skipped
    assert events.started()[1] == TrackStarted(second, resume_pts)
    assert tone_db(out[:, at(0.1) :], 660.0) == pytest.approx(-12.0, abs=0.5)
    assert tone_db(out, 440.0) < -90.0


def test_a_file_found_unplayable_is_not_retried_when_the_queue_is_sent_again(
    tmp_path: Path, deck: MusicDeck, events: Recorder
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 10.0, track_id=1, queue_item_id=1)
    missing = DeckTrack(2, 2, tmp_path / "gone.flac", "Gone", ("X",), None, 180.0)
    later = tone_track(tmp_path, "c", 660.0, 3.0, track_id=3, queue_item_id=3)
    deck.set_queue([first, missing, later])
    deck.play()
    render(deck.next_frame, 0.2)
    # The app re-sends its queue (still listing the bad item) after hearing of the failure...
    deck.set_queue([missing, later])
    render(deck.next_frame, 0.2)
    # ...and the same file queued again as a new item is refused without reopening it.
    again = DeckTrack(4, 2, tmp_path / "gone.flac", "Gone", ("X",), None, 180.0)
    deck.set_queue([again, later])
    render(deck.next_frame, 0.2)

    failures = events.of(TrackFailed)
    assert [(f.track.queue_item_id, "cannot open" in f.reason) for f in failures] == [
        (2, True),
        (4, True),
    ]
    assert deck.upcoming == (later,)
