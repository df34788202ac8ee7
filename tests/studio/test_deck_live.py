"""A live source (DJ software) on the music deck: it takes over from the song on air, carries
its titles where they are heard, and hands back to the queue without a gap whether its stream
ends, runs dry or is skipped."""

from __future__ import annotations

import fractions
import io
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from onair.studio.deck import (
    DeckEvent,
    DeckTrack,
    LiveEnded,
    LiveStarted,
    LiveTitle,
    MusicDeck,
    QueueEmpty,
    TrackEnded,
    TrackStarted,
)
from onair.studio.frames import SAMPLE_RATE
from onair.studio.livesource import LiveSource
from onair.studio.studio import Studio

from . import at, longest_silence, render, sine, tone_db, tone_track

pytestmark = pytest.mark.media


def mp3(freq: float, seconds: float, rate: int = 44100) -> bytes:
    """A sine as an MP3 stream, as DJ software sends it (44.1 kHz: the deck resamples)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo")
        t = np.arange(int(seconds * rate)) / rate
        mono = (0.25 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.vstack([mono, mono]).T.reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = fractions.Fraction(1, rate)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def decoded(source: LiveSource, seconds: float) -> None:
    """Waits for the source's decoder thread to have decoded ``seconds`` of what it was fed."""
    deadline = time.monotonic() + 10
    while source.total < seconds * SAMPLE_RATE:
        assert time.monotonic() < deadline, f"decoded only {source.total} samples"
        time.sleep(0.01)


def settled(source: LiveSource) -> int:
    """Samples decoded once the decoder thread has gone 200 ms without adding any."""
    deadline = time.monotonic() + 10
    total, since = source.total, time.monotonic()
    while time.monotonic() - since < 0.2:
        assert time.monotonic() < deadline, "the decoder never settled"
        time.sleep(0.01)
        if source.total != total:
            total, since = source.total, time.monotonic()
    return total


def finished(source: LiveSource) -> None:
    deadline = time.monotonic() + 10
    while not source.finished:
        assert time.monotonic() < deadline, "the decoder never finished"
        time.sleep(0.01)


class Events(list[DeckEvent]):
    def of(self, kind: type) -> list[DeckEvent]:
        return [e for e in self if isinstance(e, kind)]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def deck(events: Events) -> Iterator[MusicDeck]:
    deck = MusicDeck(on_event=events.append, decode_in_background=False, crossfade_s=2.0)
    yield deck
    deck.close()


@pytest.fixture
def songs(tmp_path: Path) -> tuple[DeckTrack, DeckTrack]:
    first = tone_track(tmp_path, "first", 660.0, 10.0, queue_item_id=1, track_id=1)
    after = tone_track(tmp_path, "after", 550.0, 10.0, queue_item_id=2, track_id=2)
    return first, after


def on_air(deck: MusicDeck, data: bytes, seconds: float, title: str = "") -> LiveSource:
    source = LiveSource("dj", "mp3", title=title)
    source.start()
    if title:
        source.set_title(title)
    source.feed(data)
    decoded(source, seconds)
    deck.go_live(source)
    return source


def test_a_live_source_takes_over_and_the_queue_follows_when_it_ends(
    deck: MusicDeck, events: Events, songs: tuple[DeckTrack, DeckTrack]
) -> None:
    deck.set_queue(songs)
    deck.play()
    before = render(deck.next_frame, 1.0)
    source = on_air(deck, mp3(440.0, 3.0), 2.5, title="DJ - One")
    takeover = render(deck.next_frame, 1.0)
    assert deck.now_playing is None and deck.live is source
    assert tone_db(takeover[:, -SAMPLE_RATE // 4 :], 440.0) > -20
    assert tone_db(takeover[:, -SAMPLE_RATE // 4 :], 660.0) < -60  # the song faded out
    source.end("disconnected")
    finished(source)  # the deck runs faster than real time: let the decoder catch up
    tail = render(deck.next_frame, 3.0)
    program = np.concatenate([before, takeover, tail], axis=1)
    assert longest_silence(program, -40.0) < 0.02 * SAMPLE_RATE
    assert tone_db(tail[:, -SAMPLE_RATE // 4 :], 550.0) > -20  # the next song in the queue
    ended = events.of(TrackEnded)
    assert [(e.track.title, e.skipped) for e in ended] == [("first", True)]
    started, titled, gone = events.of(LiveStarted), events.of(LiveTitle), events.of(LiveEnded)
    assert len(started) == len(titled) == len(gone) == 1
    assert titled[0].title == "DJ - One"
    assert gone[0].reason == "disconnected" and gone[0].heard
    assert [e.track.title for e in events.of(TrackStarted)] == ["first", "after"]
    assert source.off_air and not source.feed(b"more")  # the transport hangs up


def test_a_source_that_runs_dry_segues_without_a_gap(
    deck: MusicDeck, events: Events, songs: tuple[DeckTrack, DeckTrack]
) -> None:
    deck.set_queue(songs[1:])
    deck.play()
    source = on_air(deck, mp3(440.0, 2.0), 1.9)  # then nothing more, and no hang-up
    program = render(deck.next_frame, 4.0)
    assert longest_silence(program[:, SAMPLE_RATE // 10 :], -40.0) < 0.02 * SAMPLE_RATE
    assert tone_db(program[:, -SAMPLE_RATE // 4 :], 550.0) > -20
    (gone,) = events.of(LiveEnded)
    assert gone.reason == "no data"
    assert source.off_air


def test_titles_change_when_the_audio_they_came_with_is_heard(
    deck: MusicDeck, events: Events
) -> None:
    data = mp3(440.0, 3.0)
    source = LiveSource("dj", "mp3")
    source.start()
    source.feed(data[: len(data) // 2])
    decoded(source, 1.4)
    at = settled(source)  # FFmpeg holds back the last frame or so of what it was given
    source.set_title("Later - Song")  # sent with the audio from about 1.5 s on
    source.feed(data[len(data) // 2 :])
    decoded(source, 2.9)
    deck.go_live(source)
    deck.play()
    render(deck.next_frame, 2.5)
    (started,) = events.of(LiveStarted)
    (titled,) = events.of(LiveTitle)
    assert titled.title == "Later - Song"
    assert 1.4 <= at / SAMPLE_RATE <= 1.55
    # Heard once what had been decoded when it came has played, to the frame (20 ms).
    assert abs((titled.pts - started.pts) - at) <= SAMPLE_RATE // 50


def test_skip_takes_the_source_off_air(
    deck: MusicDeck, events: Events, songs: tuple[DeckTrack, DeckTrack]
) -> None:
    deck.set_queue(songs[1:])
    deck.play()
    source = on_air(deck, mp3(440.0, 3.0), 2.5)
    render(deck.next_frame, 1.0)
    deck.skip()
    program = render(deck.next_frame, 1.0)
    assert tone_db(program[:, -SAMPLE_RATE // 4 :], 550.0) > -20
    assert source.off_air
    (gone,) = events.of(LiveEnded)
    assert gone.reason == "taken off air"


def test_while_live_the_auto_dj_waits_ready_and_says_nothing(
    tmp_path: Path, events: Events
) -> None:
    pick = tone_track(tmp_path, "pick", 550.0, 10.0, queue_item_id=None, track_id=3)
    deck = MusicDeck(on_event=events.append, on_need_track=lambda: pick, decode_in_background=False)
    try:
        deck.play()
        source = on_air(deck, mp3(440.0, 3.0), 2.5)
        render(deck.next_frame, 1.0)
        assert not events.of(QueueEmpty)  # the crew is not told the auto-DJ plays: it does not
        source.end("disconnected")
        finished(source)
        program = render(deck.next_frame, 3.0)
        assert longest_silence(program, -40.0) < 0.02 * SAMPLE_RATE
        assert tone_db(program[:, -SAMPLE_RATE // 4 :], 550.0) > -20
        (started,) = events.of(TrackStarted)
        assert started.auto_dj and started.track.title == "pick"
    finally:
        deck.close()


def test_an_undecodable_stream_never_goes_on_air(
    deck: MusicDeck, events: Events, songs: tuple[DeckTrack, DeckTrack]
) -> None:
    deck.set_queue(songs[:1])
    deck.play()
    render(deck.next_frame, 0.5)
    source = LiveSource("junk", "mp3")
    source.start()
    source.feed(bytes(range(256)) * 200)
    source.end("disconnected")
    deck.go_live(source)
    deadline = time.monotonic() + 5
    while not events.of(LiveEnded):
        assert time.monotonic() < deadline
        render(deck.next_frame, 0.1)
    program = render(deck.next_frame, 0.5)
    assert tone_db(program, 660.0) > -20  # the song played on
    (gone,) = events.of(LiveEnded)
    assert not gone.heard
    assert deck.now_playing is not None and deck.now_playing.title == "first"


def test_the_host_talks_over_the_live_source_and_it_ducks() -> None:
    studio = Studio(0.0, decode_in_background=False)
    try:
        studio.deck.play()
        on_air(studio.deck, mp3(440.0, 4.0), 3.5)
        host = studio.add_voice("host")
        speech = sine(1000.0, 3.0, dbfs=-14.0, channels=1)[0]
        speech[: at(1.5)] = 0.0  # silent, then talking from 1.5 s
        program = []
        for k in range(150):
            host.push(speech[k * 960 : (k + 1) * 960])
            program.append(studio.render_frame().samples)
        out = np.concatenate(program, axis=1)
        clear = tone_db(out[:, at(0.8) : at(1.4)], 440.0)
        under = tone_db(out[:, at(2.0) : at(2.9)], 440.0)
        assert clear > -30  # the live music is on air...
        assert clear - under >= 9.0  # ...and ducks under the host's voice
        assert tone_db(out[:, at(2.0) : at(2.9)], 1000.0) > -16
    finally:
        studio.close()


@pytest.mark.parametrize("speed", [0.9992, 1.0008])
def test_a_sender_whose_clock_drifts_is_followed_not_cut_off(events: Events, speed: float) -> None:
    """A sound card 800 ppm slow (or fast), over minutes: the deck takes a sample less (more)
    per frame once the buffer has drifted, so it never runs dry, never piles up, never jumps."""
    deck = MusicDeck(on_event=events.append, decode_in_background=False)
    source = LiveSource("drifting", "mp3", buffer_s=0.2)  # no decoder: the test is the sender
    phase = 0.0
    step = 2 * np.pi * 440.0 / SAMPLE_RATE * speed  # the sender's samples, at its own rate
    owed = 0.0

    def send(seconds: float) -> None:
        nonlocal phase, owed
        owed += seconds * SAMPLE_RATE * speed
        n = int(owed)
        owed -= n
        wave = (0.25 * np.sin(phase + step * np.arange(n))).astype(np.float32)
        phase += step * n
        source.ring.write([wave, wave])
        source.total += n

    try:
        send(0.2)
        deck.go_live(source)
        deck.play()
        frames = []
        for _ in range(250 * 50):  # 250 s of program
            send(0.02)
            frames.append(deck.next_frame()[0])
        assert not events.of(LiveEnded), "the live source was cut off"
        # It settles at the edge of the band (a quarter of the buffer), give or take a frame.
        assert abs(source.ring.count - source.buffer) <= source.buffer // 4 + 2 * 960
        assert source.paced_frames > 0
        tail = np.concatenate(frames[-100:])
        assert np.abs(tail).max() > 0.2  # still the sine, at full level
        jumps = np.abs(np.diff(tail))
        assert jumps.max() < 2 * 0.25 * 2 * np.pi * 440 / SAMPLE_RATE  # no clicks
    finally:
        deck.close()
