"""HLS over a real uvicorn: the playlist parses, segments probe as AAC, ffmpeg plays the tone."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import av
import httpx
import m3u8
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from onair.media import HlsSettings, ProgramFeed, StationInfo, hls_packager, stream_routes
from onair.media.hls import HlsPackager, Segment, id3_tag
from onair.studio.frames import SAMPLE_RATE
from tests.media import (
    START_PTS,
    Song,
    ToneStudio,
    decode,
    dominant_frequency,
    tone_changes,
    tone_studio,
    wait_for,
)
from tests.server import serve

pytestmark = pytest.mark.media

SHOW = 3
CHANGE_PTS = START_PTS + 7 * SAMPLE_RATE
SONGS = [Song(START_PTS, 440.0, "Alpha - Low"), Song(CHANGE_PTS, 880.0, "Beta - High")]


@contextmanager
def live_show(settings: HlsSettings | None = None) -> Iterator[tuple[ProgramFeed, str]]:
    feed = ProgramFeed(SHOW, StationInfo("HLS FM"), encoder_grace=0.1)

    def lookup(show_id: int) -> ProgramFeed | None:
        return feed if show_id == SHOW else None

    app = Starlette(routes=[Mount("/listen", stream_routes(lookup, hls_settings=settings))])
    with serve(app) as server:  # type: ignore[arg-type]
        yield feed, server.url
    feed.close()


async def _playlist(client: httpx.AsyncClient, url: str) -> m3u8.M3U8:
    r = await client.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
    return m3u8.loads(r.text, uri=url)


def _id3_titles(segment: bytes) -> list[tuple[int, str]]:
    """(program pts, "Artist - Title") of the timed ID3 tags in a TS segment."""
    found = []
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        for packet in container.demux(data=0):
            if packet.pts is None:
                continue
            frames = _parse_id3(bytes(packet))
            pts = round(packet.pts * packet.time_base * SAMPLE_RATE)
            title = f"{frames['TPE1']} - {frames['TIT2']}" if "TPE1" in frames else frames["TIT2"]
            found.append((pts, title))
    return found


def _parse_id3(tag: bytes) -> dict[str, str]:
    assert tag[:3] == b"ID3" and tag[3] == 4
    frames = {}
    position = 10
    while position + 10 <= len(tag):
        frame_id = tag[position : position + 4].decode()
        size = int.from_bytes(tag[position + 4 : position + 8], "big")  # small: syncsafe == int
        body = tag[position + 10 : position + 10 + size]
        assert body[0] == 3  # UTF-8
        frames[frame_id] = body[1:].decode()
        position += 10 + size
    return frames


async def test_live_playlist_segments_and_timed_titles() -> None:
    with live_show() as (feed, url), tone_studio(feed, SONGS, speed=4.0) as studio:
        async with httpx.AsyncClient(timeout=15) as client:
            playlist_url = f"{url}/listen/{SHOW}.m3u8"
            first = await _playlist(client, playlist_url)  # waits for the first segment
            assert first.segments, "the first request waits for a segment"
            await asyncio.to_thread(studio.wait_until, CHANGE_PTS + 8 * SAMPLE_RATE)
            playlist = await _playlist(client, playlist_url)
            bodies = []
            for segment in playlist.segments:
                r = await client.get(segment.absolute_uri)
                assert r.status_code == 200 and r.headers["content-type"] == "video/mp2t"
                bodies.append(r.content)
            gone = await client.get(f"{url}/listen/{SHOW}/hls/1.ts")
            assert gone.status_code == 404

    assert playlist.version == 3
    assert playlist.target_duration == 2
    assert not playlist.is_endlist
    assert len(playlist.segments) == 6  # the sliding window
    assert playlist.media_sequence > first.media_sequence
    sequences = [int(s.uri.rsplit("/", 1)[1].removesuffix(".ts")) for s in playlist.segments]
    assert sequences == list(range(playlist.media_sequence, playlist.media_sequence + 6))
    assert all(s.uri.startswith(f"{SHOW}/hls/") for s in playlist.segments)
    for segment in playlist.segments:
        assert 1.95 <= segment.duration <= 2.05
        assert segment.program_date_time is not None
    # Program date-times advance with the audio (the studio's clock here runs 4x, and so
    # do its wallclocks, which are program time).
    for a, b in zip(playlist.segments, playlist.segments[1:], strict=False):
        step = b.program_date_time - a.program_date_time
        assert abs(step - timedelta(seconds=a.duration)) < timedelta(milliseconds=30)

    probe = await asyncio.to_thread(
        subprocess.run,
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-"],
        input=bodies[0],
        capture_output=True,
        check=True,
    )
    streams = json.loads(probe.stdout)["streams"]
    audio = next(s for s in streams if s["codec_type"] == "audio")
    assert audio["codec_name"] == "aac" and audio["sample_rate"] == "48000"
    assert audio["channels"] == 2
    assert any(s.get("codec_name") == "timed_id3" for s in streams)

    # The segments decode, back to back, to the program; the tone changes where the ID3 says.
    joined = b"".join(bodies)
    samples = decode(joined, "mpegts")
    with av.open(io.BytesIO(joined), format="mpegts") as container:
        first_frame = next(container.decode(audio=0))
        start_pts = round(first_frame.pts * first_frame.time_base * SAMPLE_RATE)
    change = tone_changes(samples, 440.0, 880.0)
    assert change is not None
    assert dominant_frequency(samples[change - 24000 : change - 2400]) == pytest.approx(440, abs=5)
    assert dominant_frequency(samples[change + 2400 : change + 24000]) == pytest.approx(880, abs=5)
    assert abs(start_pts + change - CHANGE_PTS) < 0.01 * SAMPLE_RATE

    tags = [tag for body in bodies for tag in _id3_titles(body)]
    titles = [title for _, title in tags]
    assert titles[0] == "Alpha - Low" and titles[-1] == "Beta - High"
    change_tags = [pts for pts, title in tags if title == "Beta - High"]
    assert change_tags[0] == CHANGE_PTS  # the tag sits at the song's first sample
    # Every segment starts with the title then heard, for players that join.
    for body in bodies:
        assert _id3_titles(body)


async def test_ffmpeg_plays_the_live_playlist() -> None:
    with live_show() as (feed, url), tone_studio(feed, SONGS[:1], speed=4.0) as studio:
        await asyncio.to_thread(studio.wait_until, START_PTS + 6 * SAMPLE_RATE)
        async with httpx.AsyncClient(timeout=15) as client:
            await _playlist(client, f"{url}/listen/{SHOW}.m3u8")  # starts the packager
        # A full window of segments, so ffmpeg need not wait for live ones.
        await asyncio.to_thread(studio.wait_until, START_PTS + 20 * SAMPLE_RATE)
        ffmpeg = await asyncio.create_subprocess_exec(
            *["ffmpeg", "-v", "error", "-i", f"{url}/listen/{SHOW}.m3u8", "-t", "5"],
            *["-f", "wav", "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wav, errors = await asyncio.wait_for(ffmpeg.communicate(), 30)
    assert ffmpeg.returncode == 0, errors.decode()
    samples = decode(wav, "wav")
    assert len(samples) == pytest.approx(5 * SAMPLE_RATE, abs=1024)
    assert dominant_frequency(samples[SAMPLE_RATE:]) == pytest.approx(440, abs=5)
    level = np.sqrt(np.mean(samples**2))
    assert level > 0.1  # the tone, not silence


async def test_packager_starts_on_demand_and_stops_when_nobody_fetches() -> None:
    settings = HlsSettings(idle_timeout=0.6)
    with live_show(settings) as (feed, url), tone_studio(feed, SONGS[:1], speed=4.0):
        assert feed.existing("hls") is None and feed.subscriber_count == 0
        async with httpx.AsyncClient(timeout=15) as client:
            playlist = await _playlist(client, f"{url}/listen/{SHOW}.m3u8")
        packager = hls_packager(feed)
        assert packager.running and packager.encoder.running
        assert playlist.segments and packager.listener_count == 1
        stopped = await asyncio.to_thread(
            wait_for, lambda: not (packager.running or packager.encoder.running)
        )
        assert stopped and not packager.running
        assert not packager.encoder.running
        assert feed.subscriber_count == 0


def _audio_span(segment: bytes) -> tuple[float, float]:
    """Seconds of a TS segment's first audio sample and of the end of its last frame."""
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        frames = list(container.decode(audio=0))
    first, last = frames[0], frames[-1]
    return float(first.pts * first.time_base), float(last.pts * last.time_base) + (
        last.samples / SAMPLE_RATE
    )


def _segments_of(feed: ProgramFeed, studio: ToneStudio, count: int) -> list[Segment]:
    packager = hls_packager(feed)
    packager.touch()
    studio.wait_until(studio.pts + (count + 1) * 2 * SAMPLE_RATE, timeout=30)
    found = [s for s in (packager.segment(n) for n in range(*_window(packager))) if s]
    packager.close()
    return found[:count]


def _window(packager: HlsPackager) -> tuple[int, int]:
    sequences = [
        int(line.rsplit("/", 1)[1][:-3])
        for line in packager.playlist().split()
        if line.endswith(".ts")
    ]
    return sequences[0], sequences[-1] + 1


def test_timestamps_run_on_when_another_studio_takes_the_show_over() -> None:
    """The studio's node died and another one's studio carries the show on from its own pts 0:
    what HLS players get keeps counting from when the show went on air, with the gap the
    handover took, never going back."""
    on_air = time.time() - 60  # on air for a minute already
    info = StationInfo("HLS FM", on_air_since=on_air)
    old = ProgramFeed(SHOW, info, encoder_grace=0.1)
    with tone_studio(old, SONGS[:1]) as studio:
        before = _segments_of(old, studio, 1)[-1]
    old.close()
    time.sleep(1.0)  # the handover
    new = ProgramFeed(SHOW, info, encoder_grace=0.1)  # pts start again from START_PTS
    with tone_studio(new, SONGS[:1]) as studio:
        after = _segments_of(new, studio, 1)[0]
    new.close()

    start_before, end_before = _audio_span(before.data)
    start_after, _ = _audio_span(after.data)
    assert start_before == pytest.approx(before.wallclock - on_air, abs=0.05)
    assert start_after == pytest.approx(after.wallclock - on_air, abs=0.05)
    gap = start_after - end_before
    assert gap == pytest.approx(after.wallclock - (before.wallclock + before.seconds), abs=0.05)
    assert gap >= 1.0  # forward, by the handover's second and more
    assert after.sequence > before.sequence
    assert dominant_frequency(decode(after.data, "mpegts")) == pytest.approx(440, abs=5)


def test_id3_tag_carries_artist_and_title() -> None:
    assert _parse_id3(id3_tag("Nina Simone - Sinnerman")) == {
        "TIT2": "Sinnerman",
        "TPE1": "Nina Simone",
    }
    assert _parse_id3(id3_tag("Station jingle")) == {"TIT2": "Station jingle"}
