"""The encoders: one per format, real codecs, checked by decoding what they produce."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import av
import numpy as np
import pytest

from onair.media.encoder import EncodedPacket, Format, adts_header, shared_encoder
from onair.media.feed import ProgramFeed
from onair.studio.frames import SAMPLE_RATE
from tests.media import START_PTS, Song, dominant_frequency, mono, tone_changes, tone_studio

pytestmark = pytest.mark.media

CODEC_FRAME = {"mp3": 1152, "aac": 1024, "opus": 960}
DECODER = {"mp3": "mp3", "aac": "aac", "opus": "libopus"}
CHANGE_PTS = START_PTS + SAMPLE_RATE  # one second in


def _encoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("encoder-")]


def _collect(fmt: Format, seconds: float) -> list[EncodedPacket]:
    feed = ProgramFeed(1, encoder_grace=0.0)
    encoder = shared_encoder(feed, fmt)
    packets: list[EncodedPacket] = []
    encoder.attach(packets.append)
    songs = [Song(START_PTS, 440.0, "A - Low"), Song(CHANGE_PTS, 880.0, "B - High")]
    with tone_studio(feed, songs, speed=8.0) as studio:
        while studio.pts < START_PTS + seconds * SAMPLE_RATE:
            time.sleep(0.01)
        time.sleep(0.1)
    encoder.detach(packets.append)
    return packets


def _decode(fmt: Format, packets: list[EncodedPacket]) -> np.ndarray:
    codec = av.CodecContext.create(DECODER[fmt], "r")
    if fmt == "aac":
        codec.extradata = bytes.fromhex("1190")  # AAC-LC, 48 kHz, stereo
    out = []
    for p in packets:
        payload = p.data[7:] if fmt == "aac" else p.data
        out += [mono(frame) for frame in codec.decode(av.Packet(payload))]
    return np.concatenate(out)


@pytest.mark.parametrize("fmt", ["mp3", "aac", "opus"])
def test_encodes_the_program_once_with_pts_of_what_is_heard(fmt: Format) -> None:
    packets = _collect(fmt, 2.0)
    assert len(packets) > 50
    durations = {p.duration for p in packets}
    assert durations == {CODEC_FRAME[fmt]}
    # Continuous: each packet starts where the last one ended.
    for a, b in itertools.pairwise(packets):
        assert b.pts == a.pts + a.duration
    if fmt == "mp3":
        assert {len(p.data) for p in packets} == {384}  # 128 kb/s CBR at 48 kHz
        assert all(p.data[:2] == b"\xff\xfb" for p in packets)
    if fmt == "aac":
        assert all(p.data[:2] == b"\xff\xf1" for p in packets)  # ADTS
    # Wallclocks follow the program clock.
    span = packets[-1].wallclock - packets[0].wallclock
    assert span == pytest.approx((packets[-1].pts - packets[0].pts) / SAMPLE_RATE, abs=1e-6)

    audio = _decode(fmt, packets)
    start = packets[0].pts  # decoded sample 0 is this program sample
    before = audio[: CHANGE_PTS - start - 2400]
    after = audio[CHANGE_PTS - start + 2400 :]
    assert dominant_frequency(before[-24000:]) == pytest.approx(440, abs=5)
    assert dominant_frequency(after[:24000]) == pytest.approx(880, abs=5)
    # The change is heard where the packets' pts say: within 5 ms.
    change = tone_changes(audio, 440.0, 880.0)
    assert change is not None
    assert abs(start + change - CHANGE_PTS) < 0.005 * SAMPLE_RATE


def test_runs_only_while_someone_listens_and_stops_after_the_grace() -> None:
    feed = ProgramFeed(1, encoder_grace=0.3)
    encoder = shared_encoder(feed, "mp3")
    assert shared_encoder(feed, "mp3") is encoder  # one per format per show
    with tone_studio(feed, [Song(START_PTS, 440.0, "A - Low")]):
        time.sleep(0.1)
        assert not encoder.running and feed.subscriber_count == 0
        assert not _encoder_threads()

        got: list[EncodedPacket] = []
        also: list[EncodedPacket] = []
        encoder.attach(got.append)
        encoder.attach(also.append)
        assert encoder.running and feed.subscriber_count == 1
        assert _encoder_threads() == ["encoder-mp3-show1"]
        time.sleep(0.3)
        assert got and len(got) == pytest.approx(len(also), abs=1)

        encoder.detach(got.append)
        assert encoder.running  # another consumer is still there
        encoder.detach(also.append)
        time.sleep(0.1)
        encoder.attach(got.append)  # back within the grace: no restart
        assert encoder.starts == 1
        encoder.detach(got.append)
        deadline = time.monotonic() + 3
        while encoder.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not encoder.running
        assert feed.subscriber_count == 0
        time.sleep(0.3)
        assert not _encoder_threads()

        encoder.attach(got.append)
        assert encoder.starts == 2
        feed.close()  # the show ends: everything stops
        assert not encoder.running
        with pytest.raises(RuntimeError):
            encoder.attach(got.append)


async def test_packets_iterate_on_the_loop_and_detach_when_closed() -> None:
    feed = ProgramFeed(1, encoder_grace=0.0)
    encoder = shared_encoder(feed, "opus")
    with tone_studio(feed, [Song(START_PTS, 440.0, "A - Low")], speed=4.0):
        packets = encoder.packets()
        received = []
        async for packet in packets:
            received.append(packet)
            if len(received) == 20:
                break
        assert encoder.sink_count == 1
        await packets.aclose()
        assert encoder.sink_count == 0
    assert all(p.duration == 960 for p in received)
    assert [p.pts - received[0].pts for p in received] == [960 * i for i in range(20)]
    await asyncio.sleep(0)


def test_adts_header_describes_the_frame() -> None:
    header = adts_header(100)
    assert header[:2] == b"\xff\xf1"
    length = ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5)
    assert length == 107
    assert (header[2] >> 2) & 0xF == 3  # 48 kHz
    assert ((header[2] & 1) << 2) | (header[3] >> 6) == 2  # stereo


def test_feed_titles_follow_program_time() -> None:
    feed = ProgramFeed(1)
    assert feed.title_at(0) == ""
    feed.set_title(1000, "B - Second")
    feed.set_title(10, "A - First")
    assert feed.title_at(9) == ""
    assert feed.title_at(10) == "A - First"
    assert feed.title_at(999) == "A - First"
    assert feed.title_at(1000) == "B - Second"
    assert [t.title for t in feed.titles_between(0, 1000)] == ["A - First"]
