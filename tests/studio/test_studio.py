"""The whole studio: a queue of tone songs, a host voice, the program and the host's return."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from onair.studio.deck import DeckEvent, TrackEnded, TrackStarted
from onair.studio.frames import FRAME_SAMPLES, ProgramFrame
from onair.studio.studio import Studio, SubscriptionClosed

from . import at, sine, tone_db, tone_track

pytestmark = pytest.mark.media

START = 1_767_268_800.0  # 2026-01-01 12:00 UTC


@pytest.fixture
def events() -> list[DeckEvent]:
    return []


@pytest.fixture
def studio(events: list[DeckEvent]) -> Iterator[Studio]:
    studio = Studio(START, crossfade_s=1.0, on_event=events.append, decode_in_background=False)
    yield studio
    studio.close()


def test_frames_advance_by_960_samples_on_the_program_clock(
    tmp_path: Path, studio: Studio, events: list[DeckEvent]
) -> None:
    first = tone_track(tmp_path, "a", 440.0, 2.0, track_id=1, queue_item_id=1)
    second = tone_track(tmp_path, "b", 660.0, 2.0, track_id=2, queue_item_id=2)
    studio.deck.set_queue([first, second])
    studio.deck.play()

    frames = [studio.render_frame() for _ in range(200)]
    assert [f.pts for f in frames] == [k * FRAME_SAMPLES for k in range(200)]
    assert [f.wallclock for f in frames] == [START + k * 0.02 for k in range(200)]
    assert all(f.samples.shape == (2, FRAME_SAMPLES) for f in frames)
    assert all(f.samples.dtype == np.float32 for f in frames)
    assert studio.pts == 200 * FRAME_SAMPLES

    # Events are stamped where the audio is heard in the program, after the limiter's delay.
    program = np.concatenate([f.samples for f in frames], axis=1)
    latency = studio.mixer.latency
    starts = [e for e in events if isinstance(e, TrackStarted)]
    assert [(e.track, e.pts) for e in starts] == [(first, latency), (second, at(1.0) + latency)]
    second_at = starts[1].pts
    assert tone_db(program[:, second_at - at(0.3) : second_at], 660.0) < -80.0
    assert tone_db(program[:, second_at : second_at + at(0.3)], 660.0) > -50.0
    first_end = next(e for e in events if isinstance(e, TrackEnded))
    assert first_end.pts == at(2.0) + latency
    assert tone_db(program[:, first_end.pts : first_end.pts + at(0.5)], 440.0) < -80.0


def test_the_host_talks_over_the_music_and_hears_it_without_themselves(
    tmp_path: Path, studio: Studio
) -> None:
    studio.deck.set_queue([tone_track(tmp_path, "song", 440.0, 8.0)])
    studio.deck.play()
    host = studio.add_voice("host")
    speech = sine(1000.0, 6.0, dbfs=-14.0, channels=1)[0]
    bursts = [(1.0, 2.0), (2.8, 3.8)]
    keyed = np.zeros_like(speech)
    for start, end in bursts:
        keyed[at(start) : at(end)] = speech[at(start) : at(end)]

    program, back = [], []
    for k in range(300):  # 6 s; the mic sends one 20 ms packet per frame
        host.push(keyed[k * 960 : (k + 1) * 960])
        program.append(studio.render_frame().samples)
        back.append(studio.mixminus("host").samples)
    out = np.concatenate(program, axis=1)
    ret = np.concatenate(back, axis=1)

    # The voice arrives 60 ms late (the jitter buffer) plus the limiter's 5 ms.
    delay = 0.065
    outside = tone_db(out[:, at(0.3) : at(0.9)], 440.0)
    for start, end in bursts:
        during = out[:, at(start + delay + 0.15) : at(end + delay)]
        assert tone_db(during, 1000.0) == pytest.approx(-14.0, abs=0.5)
        assert outside - tone_db(during, 440.0) >= 9.0
        heard_back = ret[:, at(start + delay + 0.15) : at(end + delay)]
        assert tone_db(heard_back, 440.0) - tone_db(heard_back, 1000.0) >= 40.0
        assert tone_db(heard_back, 440.0) == pytest.approx(tone_db(during, 440.0), abs=0.2)
    assert tone_db(out[:, at(2.2) : at(2.8)], 1000.0) < -80.0
    # Hold (0.5 s) and release (0.8 s) after the last word, the music is back to full.
    assert tone_db(out[:, at(5.3) : at(6.0)], 440.0) == pytest.approx(outside, abs=0.2)


def test_the_music_goes_on_when_the_host_drops_and_rejoins(tmp_path: Path, studio: Studio) -> None:
    studio.deck.set_queue([tone_track(tmp_path, "song", 440.0, 4.0)])
    studio.deck.play()
    host = studio.add_voice("host")
    host.push(sine(1000.0, 0.1, channels=1)[0])
    for _ in range(10):
        studio.render_frame()
    studio.remove_voice("host")
    dropped = np.concatenate([studio.render_frame().samples for _ in range(100)], axis=1)
    assert tone_db(dropped[:, -at(0.5) :], 440.0) == pytest.approx(-12.0, abs=0.2)
    frame = studio.render_frame()
    assert studio.mixminus("host") is frame  # off air, a voice's return is the whole program
    again = studio.add_voice("host")
    assert again.active and "host" in studio.voices


async def test_the_driver_keeps_real_time_and_never_waits_for_a_slow_subscriber(
    tmp_path: Path,
) -> None:
    studio = Studio(crossfade_s=1.0)  # decoding in the background, as in a live show
    studio.deck.set_queue([tone_track(tmp_path, "song", 440.0, 3.0)])
    studio.deck.play()
    studio.add_voice("host")
    listener = studio.subscribe(maxsize=100)
    stalled = studio.subscribe(maxsize=5)
    host_return = studio.subscribe(maxsize=100, voice_id="host")
    sunk: list[ProgramFrame] = []
    received: list[ProgramFrame] = []

    async def listen() -> None:
        async for frame in listener:
            received.append(frame)

    reader = asyncio.create_task(listen())
    started = time.monotonic()
    driver = asyncio.create_task(studio.run(sink=sunk.append))
    await asyncio.sleep(0.5)
    studio.stop()
    await driver
    elapsed = time.monotonic() - started
    studio.close()
    await reader

    expected = elapsed / 0.02
    assert abs(len(sunk) - expected) <= 2
    assert [f.pts for f in received] == [f.pts for f in sunk]
    assert [f.pts for f in sunk] == [k * FRAME_SAMPLES for k in range(len(sunk))]
    # The stalled one kept the newest frames, still readable after the close, then ends.
    assert stalled.dropped == len(sunk) - 5
    assert [stalled.get_nowait().pts for _ in range(5)] == [f.pts for f in sunk[-5:]]
    with pytest.raises(SubscriptionClosed):
        stalled.get_nowait()
    assert host_return.dropped == 0 and host_return.qsize() == len(sunk)
    assert abs(sunk[-1].wallclock - sunk[0].wallclock - (len(sunk) - 1) * 0.02) < 1e-6
    program = np.concatenate([f.samples for f in sunk], axis=1)
    assert tone_db(program[:, -at(0.2) :], 440.0) > -20.0
    assert studio.deck.underruns == 0


async def test_the_driver_catches_up_after_the_loop_was_blocked() -> None:
    studio = Studio(decode_in_background=False)
    driver = asyncio.create_task(studio.run())
    await asyncio.sleep(0.1)
    started = time.monotonic()
    time.sleep(0.15)  # noqa: ASYNC251 - on purpose: something hogs the loop for 7.5 frames
    await asyncio.sleep(0.15)
    studio.stop()
    await driver
    studio.close()

    assert studio.stats.late_frames >= 5
    assert studio.stats.max_lateness_s >= 0.1
    # Caught up: the frame count still follows the clock, so the program never drifts.
    assert abs(studio.stats.frames - (0.1 + time.monotonic() - started) / 0.02) <= 3
    assert studio.pts == studio.stats.frames * FRAME_SAMPLES
