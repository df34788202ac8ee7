"""HLS for a live show: `/listen/{id}.m3u8` and `/listen/{id}/hls/{seq}.ts`.

The packager takes the show's shared AAC encoder's ADTS frames and cuts them into MPEG-TS
segments of about `segment_seconds` (TS plays in Safari, hls.js and FFmpeg alike), muxed with
FFmpeg's mpegts muxer through PyAV. Each segment also carries timed ID3 (TIT2/TPE1, an ID3
elementary stream as Apple's timed-metadata spec has it): one tag at its start, so a player that
joins knows the title at once, and one at the pts of every title change inside it.

Segments are cut on a fixed grid of program time, so their lengths average exactly
`segment_seconds` whatever the 1024-sample AAC frames do. `EXT-X-PROGRAM-DATE-TIME` is the
studio wallclock of each segment's first sample. Media sequence numbers start from the wallclock
divided by the segment length, so a CDN never mixes up segments of two broadcasts. The segments'
timestamps count from when the show went on air (`StationInfo.on_air_since`), not from when
this studio started: when another node's studio takes the show over, its program starts again at
pts 0, but what players see runs on, with a gap as long as the handover took, which players
treat as missed segments rather than as time going backwards.

The packager starts on the first playlist request and lets the encoder go once nobody has fetched
a playlist or segment for `idle_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import av
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from onair.errors import error_body
from onair.media.audience import Audience, is_smart_speaker
from onair.media.encoder import EncodedPacket, Encoder, shared_encoder
from onair.media.feed import FeedLookup, ProgramFeed
from onair.studio.frames import SAMPLE_RATE

__all__ = ["HlsPackager", "HlsSettings", "Segment", "hls_packager", "hls_routes", "id3_tag"]

log = logging.getLogger("onair.media.hls")

TIME_BASE = Fraction(1, SAMPLE_RATE)
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"

# FFmpeg's mpegts muxer otherwise puts each 21 ms AAC frame in its own PES packet, padded to
# 188-byte TS packets (about 60 % overhead); max_delay lets it gather frames into larger PES.
# copyts keeps program pts as they are, so the ID3 tags and the audio share one clock.
_TS_OPTIONS = {
    "max_delay": "500000",
    "pat_period": "5",
    "sdt_period": "5",
    "mpegts_copyts": "1",
}


@dataclass(frozen=True)
class HlsSettings:
    segment_seconds: float = 2.0
    window: int = 6
    """Segments listed in the playlist (12 s): players start three from the end."""
    keep: int = 12
    """Segments kept for fetching, a little beyond the window, for players that lag."""
    idle_timeout: float = 30.0
    """Seconds without a fetch after which the packager stops."""
    first_segment_wait: float = 6.0
    """How long the first playlist request waits for a segment (an empty playlist is useless)."""


@dataclass(frozen=True, slots=True)
class Segment:
    sequence: int
    pts: int
    duration: int
    """In samples at 48 kHz."""
    wallclock: float
    data: bytes

    @property
    def seconds(self) -> float:
        return self.duration / SAMPLE_RATE


class HlsPackager:
    """One show's HLS: segments from the shared AAC encoder, and the sliding playlist."""

    def __init__(self, feed: ProgramFeed, encoder: Encoder, settings: HlsSettings) -> None:
        self.feed = feed
        self.encoder = encoder
        self.settings = settings
        self._target = round(settings.segment_seconds * SAMPLE_RATE)
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque(maxlen=settings.keep)
        self._running = False
        self._closed = False
        self._last_fetch = time.monotonic()
        self._clients: dict[tuple[str, str], float] = {}
        self.joins = 0
        """Clients seen for the first time (or again after lapsing), for the play log."""
        self._speakers: set[tuple[str, str]] = set()
        """The clients whose user agent names a smart speaker, told once when they join."""
        self._next_sequence: int | None = None
        # Worker-thread side: the segment being gathered.
        self._packets: list[EncodedPacket] = []
        self._next_cut: int | None = None
        """Program pts where the segment being gathered ends: a grid from the first packet."""
        self._pts_offset = 0
        """Added to program pts in the segments: samples from on air to this studio's pts 0."""

    # --- the request side (event loop)

    def touch(self, client: tuple[str, str] | None = None, *, start: bool = True) -> None:
        """Someone fetched: keep going, or start (a playlist request) if stopped."""
        now = time.monotonic()
        self._last_fetch = now
        if client is not None:
            seen = self._clients.get(client)
            if seen is None or seen < now - self._client_horizon:
                self.joins += 1
                if is_smart_speaker(client[1]):
                    self._speakers.add(client)
            self._clients[client] = now
        with self._lock:
            if self._running or self._closed or not start:
                return
            self._running = True
            self._packets = []
            self._next_cut = None
        self.encoder.attach(self._on_packet)
        log.info("hls started show=%s", self.feed.show_id)

    async def wait_ready(self, seconds: float) -> bool:
        """Waits (polling: this happens once per start) until a segment exists."""
        deadline = time.monotonic() + seconds
        while not self._segments:
            if time.monotonic() >= deadline or self._closed:
                return False
            await asyncio.sleep(0.05)
        return True

    def playlist(self) -> str:
        with self._lock:
            segments = list(self._segments)[-self.settings.window :]
        target = max([round(self.settings.segment_seconds)] + [round(s.seconds) for s in segments])
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{target}",
            f"#EXT-X-MEDIA-SEQUENCE:{segments[0].sequence if segments else 0}",
        ]
        for segment in segments:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.wallclock)}")
            lines.append(f"#EXTINF:{segment.seconds:.5f},")
            lines.append(f"{self.feed.show_id}/hls/{segment.sequence}.ts")
        if self._closed:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def segment(self, sequence: int) -> Segment | None:
        with self._lock:
            for segment in self._segments:
                if segment.sequence == sequence:
                    return segment
        return None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def _client_horizon(self) -> float:
        return max(10.0, 3 * self.settings.segment_seconds)

    @property
    def listener_count(self) -> int:
        """Distinct clients (address and user agent) that fetched in the last three segments."""
        horizon = time.monotonic() - self._client_horizon
        for key in [k for k, seen in self._clients.items() if seen < horizon]:
            del self._clients[key]
            self._speakers.discard(key)
        return len(self._clients)

    @property
    def audience(self) -> Audience:
        total = self.listener_count
        speakers = len(self._speakers)
        return Audience(hls=total - speakers, smart_speaker=speakers, joins=self.joins)

    def close(self) -> None:
        self._closed = True
        self._stop()

    # --- the encoder side (its worker thread)

    def _on_packet(self, packet: EncodedPacket) -> None:
        if time.monotonic() - self._last_fetch > self.settings.idle_timeout:
            log.info("hls idle show=%s: stopping", self.feed.show_id)
            self._stop()
            return
        if self._next_cut is None:
            self._next_cut = packet.pts + self._target
            since = self.feed.info.on_air_since
            if since is not None:
                on_air = max(0, round((packet.wallclock - since) * SAMPLE_RATE))
                self._pts_offset = on_air - packet.pts
        self._packets.append(packet)
        end = packet.pts + packet.duration
        if end < self._next_cut - packet.duration // 2:
            return
        packets, self._packets = self._packets, []
        self._next_cut += self._target
        first = packets[0]
        if self._next_sequence is None:
            self._next_sequence = int(first.wallclock / self.settings.segment_seconds)
        segment = Segment(
            sequence=self._next_sequence,
            pts=first.pts,
            duration=end - first.pts,
            wallclock=first.wallclock,
            data=self._mux(packets, end, self._pts_offset),
        )
        self._next_sequence += 1
        with self._lock:
            if self._running:
                self._segments.append(segment)

    def _mux(self, packets: list[EncodedPacket], end: int, offset: int) -> bytes:
        """The packets as one TS segment, their pts moved by `offset`."""
        start = packets[0].pts
        tags = [(start, self.feed.title_at(start))]
        tags += [(t.pts, t.title) for t in self.feed.titles_between(start + 1, end)]
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts", options=_TS_OPTIONS) as out:
            audio = out.add_mux_stream("aac", rate=SAMPLE_RATE)
            audio.time_base = TIME_BASE
            metadata = out.add_data_stream("timed_id3")
            pending_tags = [(pts, title) for pts, title in tags if title]
            for p in packets:
                while pending_tags and pending_tags[0][0] <= p.pts:
                    pts, title = pending_tags.pop(0)
                    out.mux(_packet(id3_tag(title), max(pts, start) + offset, metadata))
                out.mux(_packet(p.data, p.pts + offset, audio, p.duration))
            for pts, title in pending_tags:
                out.mux(_packet(id3_tag(title), pts + offset, metadata))
        return buffer.getvalue()

    def _stop(self) -> None:
        with self._lock:
            if not self._running:
                return
            self._running = False
            self._segments.clear()
        self.encoder.detach(self._on_packet)


def _packet(data: bytes, pts: int, stream: av.stream.Stream, duration: int = 0) -> av.Packet[Any]:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = TIME_BASE
    if duration:
        packet.duration = duration
    packet.stream = stream
    return packet


def _iso(wallclock: float) -> str:
    return datetime.fromtimestamp(wallclock, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _syncsafe(n: int) -> bytes:
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def _text_frame(frame_id: bytes, text: str) -> bytes:
    payload = b"\x03" + text.encode()  # encoding 3: UTF-8
    return frame_id + _syncsafe(len(payload)) + b"\x00\x00" + payload


def id3_tag(title: str) -> bytes:
    """An ID3v2.4 tag for "Artist - Title": TPE1 and TIT2 (TIT2 alone without a " - ")."""
    artist, separator, song = title.partition(" - ")
    frames = _text_frame(b"TIT2", song if separator else title)
    if separator:
        frames += _text_frame(b"TPE1", artist)
    return b"ID3\x04\x00\x00" + _syncsafe(len(frames)) + frames


def hls_packager(feed: ProgramFeed, settings: HlsSettings | None = None) -> HlsPackager:
    """The show's one packager (the first caller's settings apply)."""
    encoder = shared_encoder(feed, "aac")  # outside the factory: it takes the feed's lock too
    return feed.shared("hls", lambda: HlsPackager(feed, encoder, settings or HlsSettings()))


def _not_live(show_id: int) -> JSONResponse:
    return JSONResponse(error_body("not_live", f"show {show_id} is not live"), status_code=404)


_COMMON_HEADERS = {"access-control-allow-origin": "*"}


def _client(request: Request) -> tuple[str, str]:
    host = request.client.host if request.client else ""
    return host, request.headers.get("user-agent", "")


def hls_routes(lookup_feed: FeedLookup, settings: HlsSettings | None = None) -> list[BaseRoute]:
    """The playlist and segment routes, relative to where `/listen` is mounted."""
    hls_settings = settings or HlsSettings()

    async def media_playlist(request: Request) -> Response:
        show_id = int(request.path_params["show_id"])
        feed = lookup_feed(show_id)
        if feed is None or feed.closed:
            return _not_live(show_id)
        packager = hls_packager(feed, hls_settings)
        packager.touch(_client(request))
        await packager.wait_ready(hls_settings.first_segment_wait)
        return Response(
            packager.playlist(),
            media_type=PLAYLIST_TYPE,
            headers={**_COMMON_HEADERS, "cache-control": "no-cache"},
        )

    async def media_segment(request: Request) -> Response:
        show_id = int(request.path_params["show_id"])
        feed = lookup_feed(show_id)
        if feed is None or feed.closed:
            return _not_live(show_id)
        existing = feed.existing("hls")
        segment = None
        if isinstance(existing, HlsPackager):
            existing.touch(_client(request), start=False)
            segment = existing.segment(int(request.path_params["sequence"]))
        if segment is None:
            return JSONResponse(
                error_body("not_found", "segment not found (it may have left the window)"),
                status_code=404,
            )
        return Response(
            segment.data,
            media_type=SEGMENT_TYPE,
            # A sequence number is never reused (it counts from the wallclock), so caches
            # may keep a segment as long as they like.
            headers={**_COMMON_HEADERS, "cache-control": "public, max-age=86400, immutable"},
        )

    return [
        Route("/{show_id:int}.m3u8", media_playlist, methods=["GET"]),
        Route("/{show_id:int}/hls/{sequence:int}.ts", media_segment, methods=["GET"]),
    ]
