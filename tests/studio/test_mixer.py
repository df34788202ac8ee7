"""The desk and its voice inputs: program, ducking, mix-minus returns and the jitter buffer."""

from __future__ import annotations

import numpy as np
import pytest

from onair.studio.frames import FRAME_SAMPLES, Samples
from onair.studio.mixer import Mixer, Routing
from onair.studio.voice import VoiceInput

from . import at, sine, tone_db

CEILING = 10.0 ** (-1.0 / 20.0)


def frames_of(signal: Samples) -> list[Samples]:
    return [signal[:, i : i + FRAME_SAMPLES].copy() for i in range(0, signal.shape[1], 960)]


def mix_all(
    mixer: Mixer, music: Samples, voices: dict[str, Samples], routing: Routing | None = None
) -> tuple[Samples, dict[str, Samples]]:
    program, returns = [], {voice_id: [] for voice_id in voices}
    voice_frames = {voice_id: frames_of(v) for voice_id, v in voices.items()}
    for k, music_frame in enumerate(frames_of(music)):
        frame_voices = {v: f[k] for v, f in voice_frames.items()}
        program.append(mixer.mix(music_frame, frame_voices, routing or Routing()))
        for voice_id in voices:
            returns[voice_id].append(mixer.mixminus(voice_id))
    return (
        np.concatenate(program, axis=1),
        {v: np.concatenate(r, axis=1) for v, r in returns.items()},
    )


def test_the_host_hears_the_ducked_music_without_their_own_voice() -> None:
    mixer = Mixer()
    music = sine(440.0, 2.0, dbfs=-12.0)
    host = sine(1000.0, 2.0, dbfs=-14.0)
    program, returns = mix_all(mixer, music, {"host": host})

    steady = program[:, at(0.5) :]
    assert tone_db(steady, 1000.0) == pytest.approx(-14.0, abs=0.2)
    assert tone_db(steady, 440.0) == pytest.approx(-24.0, abs=0.3)  # ducked 12 dB
    back = returns["host"][:, at(0.5) :]
    assert tone_db(back, 440.0) == pytest.approx(-24.0, abs=0.3)  # ducked like listeners hear
    assert tone_db(back, 440.0) - tone_db(back, 1000.0) > 40.0
    assert mixer.latency == at(0.005)


def test_each_caller_hears_everyone_but_themselves() -> None:
    mixer = Mixer()
    music = sine(440.0, 1.0, dbfs=-12.0)
    host = sine(1000.0, 1.0, dbfs=-14.0)
    caller = sine(1500.0, 1.0, dbfs=-14.0)
    program, returns = mix_all(mixer, music, {"host": host, "caller": caller})

    window = slice(at(0.5), None)
    for heard in (program, returns["host"], returns["caller"]):
        assert tone_db(heard[:, window], 440.0) > -30.0
    assert tone_db(program[:, window], 1000.0) > -15.0
    assert tone_db(program[:, window], 1500.0) > -15.0
    assert tone_db(returns["host"][:, window], 1000.0) < -80.0
    assert tone_db(returns["host"][:, window], 1500.0) > -15.0
    assert tone_db(returns["caller"][:, window], 1500.0) < -80.0
    assert tone_db(returns["caller"][:, window], 1000.0) > -15.0


def test_screening_is_a_private_line_off_air() -> None:
    """The host screens a caller: neither is in the program; the caller hears the host over
    the show turned down, the host hears the caller, nobody hears themselves."""
    mixer = Mixer()
    music = sine(440.0, 1.0, dbfs=-12.0)
    host = sine(1000.0, 1.0, dbfs=-14.0)
    caller = sine(2000.0, 1.0, dbfs=-14.0)
    screening = Routing(
        on_air=frozenset(),
        hears={"host": frozenset({"caller"}), "caller": frozenset({"host"})},
        bed_gain={"caller": 0.25},
    )
    program, returns = mix_all(mixer, music, {"host": host, "caller": caller}, screening)

    window = slice(at(0.5), None)
    assert tone_db(program[:, window], 440.0) == pytest.approx(-12.0, abs=0.3)  # not ducked
    assert tone_db(program[:, window], 1000.0) < -80.0
    assert tone_db(program[:, window], 2000.0) < -80.0
    to_caller, to_host = returns["caller"][:, window], returns["host"][:, window]
    assert tone_db(to_caller, 1000.0) == pytest.approx(-14.0, abs=0.3)
    assert tone_db(to_caller, 440.0) == pytest.approx(-24.0, abs=0.3)  # the show, quieter
    assert tone_db(to_caller, 2000.0) < -80.0
    assert tone_db(to_host, 2000.0) == pytest.approx(-14.0, abs=0.3)
    assert tone_db(to_host, 1000.0) < -80.0


def test_an_off_air_voice_with_no_line_is_heard_by_nobody() -> None:
    mixer = Mixer()
    music = sine(440.0, 1.0, dbfs=-12.0)
    host = sine(1000.0, 1.0, dbfs=-14.0)
    waiting = sine(2000.0, 1.0, dbfs=-14.0)
    routing = Routing(on_air=frozenset({"host"}))
    program, returns = mix_all(mixer, music, {"host": host, "waiting": waiting}, routing)

    window = slice(at(0.5), None)
    for heard in (program, returns["host"], returns["waiting"]):
        assert tone_db(heard[:, window], 2000.0) < -80.0
    assert tone_db(program[:, window], 1000.0) > -15.0
    assert tone_db(returns["waiting"][:, window], 1000.0) > -15.0  # it hears the program
    assert tone_db(returns["host"][:, window], 1000.0) < -80.0


def test_a_hot_mix_is_limited_in_the_program_and_in_every_return() -> None:
    mixer = Mixer()
    music = sine(440.0, 1.0, dbfs=0.0)
    host = sine(1000.0, 1.0, dbfs=-1.0)
    program, returns = mix_all(mixer, music, {"host": host})
    assert float(np.abs(program).max()) <= CEILING
    assert float(np.abs(returns["host"]).max()) <= CEILING


def test_without_voices_the_music_is_the_program() -> None:
    mixer = Mixer()
    music = sine(440.0, 0.5, dbfs=-12.0)
    program, _ = mix_all(mixer, music, {})
    np.testing.assert_array_equal(program[:, mixer.latency :], music[:, : -mixer.latency])
    assert mixer.mixminus("nobody").shape == (2, FRAME_SAMPLES)


# -- the voice input's jitter buffer ------------------------------------------------------


def pull_seconds(voice: VoiceInput, seconds: float) -> Samples:
    return np.concatenate([voice.pull() for _ in range(round(seconds * 50))], axis=1)


def test_voice_waits_for_its_target_latency_then_plays_in_order() -> None:
    voice = VoiceInput("host")
    assert not voice.active
    speech = sine(1000.0, 0.1, channels=1)[0]
    voice.push(speech[:1000])  # mono, odd-sized chunks
    assert voice.active
    assert not voice.pull().any()  # 1000 samples is under the 60 ms target
    voice.push(speech[1000:4000])
    out = np.concatenate([voice.pull() for _ in range(5)], axis=1)
    np.testing.assert_array_equal(out[0, :4000], speech[:4000])
    np.testing.assert_array_equal(out[1, :4000], speech[:4000])  # mono goes to both sides
    assert voice.stats.underruns == 1


def test_voice_underrun_is_silent_then_rebuffers_to_the_target() -> None:
    voice = VoiceInput("host", target_latency_s=0.06)
    voice.push(np.full((2, at(0.06)), 0.25, dtype=np.float32))
    assert pull_seconds(voice, 0.06).min() == 0.25
    assert not voice.pull().any()
    assert voice.stats.underruns == 1
    voice.push(np.full((2, at(0.04)), 0.5, dtype=np.float32))
    assert not voice.pull().any()  # 40 ms buffered: still under the target, still waiting
    voice.push(np.full((2, at(0.04)), 0.5, dtype=np.float32))
    assert voice.pull().min() == 0.5


def test_voice_overflow_drops_the_oldest_back_to_the_target() -> None:
    voice = VoiceInput("caller", target_latency_s=0.06, max_latency_s=0.2)
    ramp = np.arange(at(0.25), dtype=np.float32) / at(0.25)
    voice.push(np.tile(ramp, (2, 1)))
    assert voice.stats.overflows == 1
    assert voice.buffered_s == pytest.approx(0.06)
    frame = voice.pull()
    assert frame[0, 0] == ramp[-at(0.06)]  # the newest 60 ms survive
    assert voice.stats.dropped_samples == at(0.25) - at(0.06)


def test_voice_latency_left_by_a_stall_is_trimmed_back_to_the_target() -> None:
    """A stall then a burst leaves 140 ms more in the buffer than jitter needs: within two
    seconds (one full window of it) it is dropped, and the voice keeps its target delay."""
    voice = VoiceInput("caller", target_latency_s=0.06, max_latency_s=0.3)
    for _ in range(3):
        voice.push(np.zeros((2, FRAME_SAMPLES), dtype=np.float32))
    for _ in range(10):  # steady: a frame in, a frame out
        voice.push(np.zeros((2, FRAME_SAMPLES), dtype=np.float32))
        voice.pull()
    voice.push(np.zeros((2, 7 * FRAME_SAMPLES), dtype=np.float32))  # the stall's backlog
    assert voice.buffered_s == pytest.approx(0.06 + 0.14, abs=0.001)
    for _ in range(100):
        voice.push(np.zeros((2, FRAME_SAMPLES), dtype=np.float32))
        voice.pull()
    assert voice.stats.trims == 1 and voice.stats.overflows == 0
    assert voice.buffered_s <= 0.06 + 0.02
    for _ in range(200):  # and no more trims while it stays there
        voice.push(np.zeros((2, FRAME_SAMPLES), dtype=np.float32))
        voice.pull()
    assert voice.stats.trims == 1 and voice.stats.underruns == 0


def test_voice_target_grows_when_the_network_is_jumpy_and_shrinks_when_it_calms() -> None:
    voice = VoiceInput("caller", target_latency_s=0.04)
    frame = np.full((2, FRAME_SAMPLES), 0.1, dtype=np.float32)
    assert voice.target_latency_s == pytest.approx(0.04)
    for burst in (2, 3, 4):  # bursts after gaps: each time the buffer runs dry once more
        voice.push(np.repeat(frame, burst + 1, axis=1))
        for _ in range(burst + 2):
            voice.pull()
    assert voice.stats.underruns == 3
    assert voice.target_latency_s == pytest.approx(0.10)
    for _ in range(6):
        voice.push(frame)
    for _ in range(1600):  # 32 s of a steady link: back down a frame every 10 s
        voice.push(frame)
        voice.pull()
    assert voice.target_latency_s == pytest.approx(0.04)
    assert voice.buffered_s <= 0.04 + 0.02  # and the excess delay was dropped
    assert voice.stats.underruns == 3


def test_voice_timestamps_conceal_loss_and_discard_duplicates() -> None:
    voice = VoiceInput("caller", target_latency_s=0.02)
    packet = np.full((2, 960), 0.5, dtype=np.float32)
    voice.push(packet, pts_hint=0)
    voice.push(packet, pts_hint=1920)  # the packet at 960 was lost
    voice.push(packet, pts_hint=960)  # ...and arrives too late to use
    out = np.concatenate([voice.pull() for _ in range(3)], axis=1)
    assert out[:, :960].min() == 0.5
    assert not out[:, 960:1920].any()
    assert out[:, 1920:].min() == 0.5
    assert voice.stats.concealed_samples == 960
    assert voice.stats.late_samples == 960


def test_voice_mute_and_level_glide_over_a_frame() -> None:
    voice = VoiceInput("host", target_latency_s=0.02)
    voice.push(np.full((2, at(0.15)), 0.5, dtype=np.float32))
    voice.pull()
    voice.muted = True
    fading = voice.pull()
    assert fading[0, 0] > 0.49 and fading[0, -1] == 0.0
    assert float(np.abs(np.diff(fading[0])).max()) < 0.001
    assert not voice.pull().any()
    voice.muted = False
    voice.level_db = -6.0
    voice.pull()
    assert voice.pull()[0, 0] == pytest.approx(0.5 * 10 ** (-6 / 20))
    voice.disconnect()
    assert not voice.active and voice.buffered_s == 0.0
    assert not voice.pull().any()
