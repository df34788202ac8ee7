"""Restream: the show's program pushed to RTMP destinations (Twitch, YouTube, any RTMP server).

Each destination is one `RtmpPush`. It takes its audio from the show's shared AAC encoder (the
program is encoded once per format; the push only remuxes), draws a still title card once and
sends it as H.264 video at a low frame rate (Twitch and YouTube refuse audio-only streams). PyAV
muxes the FLV; an `ffmpeg -c copy` subprocess speaks RTMP. That split is deliberate: PyAV opens
a network output (the TCP connect, the RTMP handshake and publish) while holding the GIL and with
no timeout, so a destination that accepts the connection and then says nothing would freeze the
whole process, studio included. A subprocess can be killed; a pipe write releases the GIL.

Nothing here runs on the event loop or in the studio's 20 ms tick: the encoder hands packets to
the push on its own worker thread, the push puts them on a bounded queue (full: the packet is
lost and counted), and a thread per connection muxes them into the relay's stdin.

A destination that refuses, drops or stalls the connection is retried with exponential backoff
(`retry_first_s`, doubling, capped at `retry_max_s`) by a supervisor thread per destination; its
status says so with the last error (the stream key scrubbed out). A connection that makes no
progress for `stall_s` (neither our writes nor ffmpeg's progress reports) is killed and retried.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import io
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
from PIL import Image, ImageDraw, ImageFont

from onair.media.encoder import EncodedPacket, Encoder, shared_encoder
from onair.media.feed import ProgramFeed
from onair.studio.frames import SAMPLE_RATE

__all__ = [
    "PushState",
    "PushStatus",
    "RestreamSettings",
    "RtmpPush",
    "RtmpTarget",
    "ShowRestream",
    "TitleCard",
    "show_restream",
]

log = logging.getLogger("onair.media.restream")

RTMP_SCHEMES = ("rtmp://", "rtmps://")
_ADTS_HEADER = 7  # the shared AAC encoder's packets are ADTS frames without CRC
_AUDIO_TIME_BASE = Fraction(1, SAMPLE_RATE)
_MASK = "••••"


@dataclass(frozen=True)
class RestreamSettings:
    retry_first_s: float = 1.0
    """Wait before the first retry; each failure in a row doubles it."""
    retry_max_s: float = 60.0
    """The longest wait between two attempts."""
    healthy_after_s: float = 10.0
    """A connection live this long resets the backoff."""
    stall_s: float = 15.0
    """A connection that makes no progress this long (connecting or sending) is given up."""
    queue_packets: int = 250
    """AAC packets (21 ms each: about 5 s) a connection may fall behind by before losing some."""
    video_size: tuple[int, int] = (1280, 720)
    video_fps: int = 10
    keyframe_s: float = 2.0
    """Twitch asks for a keyframe at least every 2 s (it is a still image: keyframes are cheap)."""
    ffmpeg: str = "ffmpeg"
    """The relay that speaks RTMP (see the module's docstring)."""


@dataclass(frozen=True)
class RtmpTarget:
    """Where to push: an rtmp:// or rtmps:// URL and the stream key appended to it."""

    destination_id: int
    name: str
    url: str
    stream_key: str = ""

    @property
    def push_url(self) -> str:
        if not self.stream_key:
            return self.url
        return f"{self.url.rstrip('/')}/{self.stream_key}"

    def scrub(self, text: str) -> str:
        """`text` without the stream key (FFmpeg's errors may quote the URL)."""
        return text.replace(self.stream_key, _MASK) if self.stream_key else text


@dataclass(frozen=True)
class TitleCard:
    """What the still video says: the show's title, a line under it and the show's cover."""

    title: str
    subtitle: str = ""
    cover_path: Path | None = None


class PushState(enum.StrEnum):
    connecting = "connecting"
    live = "live"
    retrying = "retrying"
    stopped = "stopped"


@dataclass(frozen=True)
class PushStatus:
    destination_id: int
    name: str
    state: PushState
    error: str | None = None
    """The last failure, kept while retrying (and after a stop that followed one)."""
    failures: int = 0
    """Failed attempts in a row."""
    retry_at: float | None = None
    """Unix time of the next attempt, while waiting to retry (None: an attempt is under way)."""
    live_since: float | None = None
    sent_s: float = 0.0
    """Program seconds sent on the current connection."""
    dropped: int = 0
    """Audio packets lost because the destination fell behind (since the push started)."""


# --- the title card


def draw_title_card(card: TitleCard, size: tuple[int, int]) -> Image.Image:
    """A plain, legible still: the cover (when there is one) beside the title."""
    width, height = size
    image = Image.new("RGB", size, (17, 24, 39))
    draw = ImageDraw.Draw(image)
    left = width // 16
    if card.cover_path is not None:
        try:
            with Image.open(card.cover_path) as cover:
                side = height * 2 // 3
                picture = cover.convert("RGB").resize((side, side))
            image.paste(picture, (left, (height - side) // 2))
            left += side + width // 24
        except (OSError, ValueError):
            log.warning("title card: cover %s unreadable; drawing without it", card.cover_path)
    big = ImageFont.load_default(size=max(12, height // 10))
    small = ImageFont.load_default(size=max(10, height // 22))
    title = _fit(draw, card.title, big, width - left - width // 16)
    draw.text((left, height * 2 // 5), title, font=big, fill=(249, 250, 251))
    if card.subtitle:
        subtitle = _fit(draw, card.subtitle, small, width - left - width // 16)
        draw.text((left, height * 3 // 5), subtitle, font=small, fill=(209, 213, 219))
    draw.text((left, height * 4 // 5), "Live on OnAir", font=small, fill=(248, 113, 113))
    return image


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


# --- one connection


class _Pipe:
    """What PyAV writes the FLV to: ffmpeg's stdin. No `seek`, so the muxer streams; `os.write`
    releases the GIL, so a destination that stops reading blocks only this connection's thread
    (until the supervisor kills ffmpeg, which breaks the pipe)."""

    def __init__(self, connection: _Connection, fd: int) -> None:
        self._connection = connection
        self._fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._connection.progress_at = time.monotonic()
        return len(data)


class _Connection:
    """One attempt: an ffmpeg relay (`-c copy` to the RTMP URL) fed the FLV we mux, until told
    to stop or it fails. Killing the relay ends everything the connection's threads wait on."""

    def __init__(self, push: RtmpPush) -> None:
        self.push = push
        self.packets: queue.Queue[EncodedPacket | None] = queue.Queue(push.settings.queue_packets)
        self.progress_at = time.monotonic()
        self.live_since: float | None = None
        self.sent_s = 0.0
        self.error: str | None = None
        self.finished = threading.Event()
        self._relay: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=8)
        self._attached = False
        self.thread = threading.Thread(
            target=self._run,
            name=f"restream-show{push.feed.show_id}-dest{push.target.destination_id}",
            daemon=True,
        )

    def sink(self, packet: EncodedPacket) -> None:
        """The encoder's worker calls this: never block it."""
        try:
            self.packets.put_nowait(packet)
        except queue.Full:
            self.push.dropped += 1

    def stop(self) -> None:
        # Full: it is behind, and sees `push.stopping` after its next packet.
        with contextlib.suppress(queue.Full):
            self.packets.put_nowait(None)

    def kill(self, reason: str) -> None:
        """Gives up on a stalled connection: the relay dies, the pipe breaks, the thread ends."""
        self.error = reason
        self._detach()
        relay = self._relay
        if relay is not None and relay.poll() is None:
            relay.kill()

    def _detach(self) -> None:
        if self._attached:
            self._attached = False
            self.push.encoder.detach(self.sink)

    def _run(self) -> None:
        _background_priority(threading.get_native_id())
        try:
            self._send()
        except Exception as exc:  # a broken pipe, a failed encoder: all mean "try again"
            if self.error is None:
                self.error = self._relay_error() or _describe(exc)
        finally:
            self._detach()
            self._end_relay()
            if self.error is None and not self.push.stopping:
                self.error = self._relay_error() or "the destination closed the connection"
            if self.error is not None:
                self.error = self.push.target.scrub(self.error)
            self.finished.set()

    def _send(self) -> None:
        push, settings = self.push, self.push.settings
        relay = self._relay = subprocess.Popen(
            _relay_command(settings, push.target.push_url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert relay.stdin is not None and relay.stdout is not None and relay.stderr is not None
        _background_priority(relay.pid)
        for stream, read in ((relay.stdout, self._read_progress), (relay.stderr, self._read_log)):
            threading.Thread(target=read, args=(stream,), daemon=True).start()
        container: Any = av.open(
            _Pipe(self, relay.stdin.fileno()), "w", format="flv", buffer_size=4096
        )
        try:
            still = push.stills.get(push.card, settings, push.encoder.bit_rate)
            # Copies of the still's streams: their codec configuration for the FLV header, and
            # no encoder of their own (the video is the still's GOP, the audio the shared AAC).
            video = container.add_stream_from_template(still.video, opaque=True)
            audio = container.add_stream_from_template(still.audio, opaque=True)
            container.start_encoding()
            if push.stopping:
                return
            push.encoder.attach(self.sink)
            self._attached = True
            self._mux(container, video, audio, still.gop)
        finally:
            _close_quietly(container)

    def _mux(self, container: Any, video: Any, audio: Any, gop: list[tuple[bytes, bool]]) -> None:
        push, fps = self.push, self.push.settings.video_fps
        video_time_base = Fraction(1, fps)
        first_pts: int | None = None
        frame = 0  # video frames sent: the GOP is replayed in order, frame after frame
        video_pts = 0  # of the next video frame, in frames since the first audio packet
        while True:
            try:
                packet = self.packets.get(timeout=1.0)
            except queue.Empty:
                if push.stopping or self.error is not None:
                    return
                continue
            if packet is None or push.stopping or self.error is not None:
                return
            if first_pts is None:
                first_pts = packet.pts
            at = packet.pts - first_pts
            due = at * fps // SAMPLE_RATE  # the last video frame due by this audio packet
            if due - video_pts > fps:  # packets were lost: do not send a burst of video
                video_pts = due
            while video_pts <= due:
                data, key = gop[frame % len(gop)]
                out = av.Packet(data)
                out.stream = video
                out.time_base = video_time_base
                out.pts = out.dts = video_pts
                out.is_keyframe = key
                container.mux(out)
                frame += 1
                video_pts += 1
            out = av.Packet(packet.data[_ADTS_HEADER:])
            out.stream = audio
            out.time_base = _AUDIO_TIME_BASE
            out.pts = out.dts = at
            container.mux(out)

    def _read_progress(self, stream: IO[bytes]) -> None:
        """ffmpeg's `-progress` report: once it has sent something, the destination is live."""
        with stream:
            for line in stream:
                self._progress(line)

    def _progress(self, line: bytes) -> None:
        name, _, value = line.decode("utf-8", "replace").strip().partition("=")
        if name != "out_time_us" or not value.isdigit() or int(value) <= 0:
            return
        self.sent_s = int(value) / 1e6
        self.progress_at = time.monotonic()
        if self.live_since is None:
            self.live_since = time.time()

    def _read_log(self, stream: IO[bytes]) -> None:
        with stream:
            for line in stream:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self._stderr.append(text)

    def _relay_error(self) -> str | None:
        """ffmpeg's last words: the line that says what went wrong ("…: Connection refused")."""
        lines = [line for line in self._stderr if "Failed to update header" not in line]
        return lines[-1][:300] if lines else None

    def _end_relay(self) -> None:
        relay = self._relay
        if relay is None:
            return
        with contextlib.suppress(OSError):
            if relay.stdin is not None:
                relay.stdin.close()
        try:
            relay.wait(timeout=5)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()


def _background_priority(task: int) -> None:
    """Lets the studio win the CPU: a push is background work (Linux: a thread id or a pid)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, task, min(19, os.getpriority(os.PRIO_PROCESS, task) + 10))


def _relay_command(settings: RestreamSettings, url: str) -> list[str]:
    timeout_us = str(int(settings.stall_s * 1e6))
    return [
        settings.ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.5",
        "-f",
        "flv",
        "-probesize",
        "32768",
        "-analyzeduration",
        "0",
        "-i",
        "pipe:0",
        "-map",
        "0",
        "-c",
        "copy",
        "-rw_timeout",
        timeout_us,
        "-flvflags",
        "no_duration_filesize",
        "-f",
        "flv",
        url,
    ]


class _Still:
    """A title card encoded once for every connection of every destination of a show: one
    closed GOP of H.264 (a keyframe, then near-empty frames), replayed for as long as a push
    lasts, and the prototype streams a connection copies its codec configuration from."""

    def __init__(self, card: TitleCard, settings: RestreamSettings, audio_bit_rate: int) -> None:
        image = draw_title_card(card, settings.video_size)
        # An in-memory FLV that is never read: only its two opened encoders' streams are used.
        self._container: Any = av.open(io.BytesIO(), "w", format="flv")
        video = self._container.add_stream("libx264", rate=settings.video_fps)
        video.width, video.height = settings.video_size
        video.pix_fmt = "yuv420p"
        length = max(1, round(settings.keyframe_s * settings.video_fps))
        video.codec_context.gop_size = length
        video.codec_context.options = {
            "preset": "ultrafast",
            "tune": "stillimage",
            "bf": "0",
            "threads": "1",  # one frame, once: no pool of threads competing with the studio
        }
        audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        audio.bit_rate = audio_bit_rate  # as the shared encoder's (its configuration is the same)
        self._container.start_encoding()
        frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")  # type: ignore[no-untyped-call]
        gop: list[tuple[bytes, bool]] = []
        for i in range(length):
            frame.pts = i
            gop += [(bytes(p), bool(p.is_keyframe)) for p in video.encode(frame)]
        gop += [(bytes(p), bool(p.is_keyframe)) for p in video.encode(None)]
        if not gop or not gop[0][1]:
            raise RuntimeError("the video encoder gave no keyframe for the title card")
        self.gop = gop
        self.video, self.audio = video, audio


class _Stills:
    """The show's encoded title cards, made on first use by a connection's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[TitleCard, RestreamSettings, int], _Still] = {}

    def get(self, card: TitleCard, settings: RestreamSettings, audio_bit_rate: int) -> _Still:
        key = (card, settings, audio_bit_rate)
        with self._lock:
            still = self._made.get(key)
            if still is None:
                still = self._made[key] = _Still(card, settings, audio_bit_rate)
            return still


def _close_quietly(container: Any) -> None:
    try:
        container.close()
    except Exception as exc:  # a relay that died: nothing left to flush
        log.debug("restream container close: %s", exc)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


# --- one destination


class RtmpPush:
    """Pushes one show's program to one destination, retrying until stopped."""

    def __init__(
        self,
        feed: ProgramFeed,
        target: RtmpTarget,
        card: TitleCard,
        settings: RestreamSettings | None = None,
        *,
        encoder: Encoder | None = None,
        stills: _Stills | None = None,
    ) -> None:
        self.feed = feed
        self.target = target
        self.card = card
        self.settings = settings or RestreamSettings()
        self.encoder = encoder or shared_encoder(feed, "aac")
        self.dropped = 0
        self.stopping = False
        self._wake = threading.Event()
        self.stills = stills or _Stills()
        self._status = PushStatus(target.destination_id, target.name, PushState.connecting)
        self._connection: _Connection | None = None
        self._thread = threading.Thread(
            target=self._supervise,
            name=f"restream-supervisor-show{feed.show_id}-dest{target.destination_id}",
            daemon=True,
        )

    @property
    def status(self) -> PushStatus:
        status, connection = self._status, self._connection
        if status.state is PushState.live and connection is not None:
            return replace(
                status,
                sent_s=round(connection.sent_s, 2),
                dropped=self.dropped,
            )
        return replace(status, dropped=self.dropped)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()
        log.info(
            "restream started show=%s destination=%s", self.feed.show_id, self.target.destination_id
        )

    def stop(self) -> None:
        """Never blocks: the supervisor closes the connection (the FLV trailer) and ends."""
        self.stopping = True
        self._wake.set()
        connection = self._connection
        if connection is not None:
            connection.stop()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # --- the supervisor thread

    def _set(self, status: PushStatus) -> None:
        self._status = status

    def _supervise(self) -> None:
        failures = 0
        error: str | None = None
        connection: _Connection | None = None
        while not self.stopping:
            # After a failure every attempt is part of retrying, until one goes live.
            state = PushState.retrying if failures else PushState.connecting
            self._set(self._state(state, error=error, failures=failures))
            connection = _Connection(self)
            self._connection = connection
            connection.thread.start()
            lasted = self._watch(connection)
            if self.stopping:
                break
            while not connection.finished.wait(1.0):  # given up on: make sure its relay is gone
                connection.kill(connection.error or "the destination stopped answering")
            error = connection.error or "the destination closed the connection"
            failures = 1 if lasted >= self.settings.healthy_after_s else failures + 1
            delay = min(
                self.settings.retry_max_s, self.settings.retry_first_s * 2 ** (failures - 1)
            )
            log.warning(
                "restream failed show=%s destination=%s failures=%d retry_in=%.1fs: %s",
                self.feed.show_id,
                self.target.destination_id,
                failures,
                delay,
                error,
            )
            retry_at = time.time() + delay
            self._set(self._state(PushState.retrying, error, failures=failures, retry_at=retry_at))
            self._wake.wait(delay)
        if connection is not None:
            connection.stop()  # it closes the FLV and lets the relay flush, unless it is stuck
            if not connection.finished.wait(self.settings.stall_s):
                while not connection.finished.wait(1.0):
                    connection.kill("stopped")
        self._set(self._state(PushState.stopped, error))
        log.info(
            "restream stopped show=%s destination=%s", self.feed.show_id, self.target.destination_id
        )

    def _state(self, state: PushState, error: str | None = None, **more: Any) -> PushStatus:
        return PushStatus(self.target.destination_id, self.target.name, state, error, **more)

    def _watch(self, connection: _Connection) -> float:
        """Waits for the connection to end or stall; returns how long it was live (seconds)."""
        reported_live = False
        while not connection.finished.wait(0.25):
            if self.stopping:
                return 0.0
            if connection.live_since is not None and not reported_live:
                reported_live = True
                self._set(self._state(PushState.live, live_since=connection.live_since))
            if time.monotonic() - connection.progress_at > self.settings.stall_s:
                connection.kill(
                    f"the destination stopped answering for {self.settings.stall_s:g} s"
                )
                break
        if connection.live_since is None:
            return 0.0
        return time.time() - connection.live_since


# --- every destination of one show


class ShowRestream:
    """The show's pushes by destination id; made per show through the feed, so it ends with it.

    Driven from the event loop; the pushes run on their own threads.
    """

    def __init__(self, feed: ProgramFeed, settings: RestreamSettings | None = None) -> None:
        self.feed = feed
        self.settings = settings or RestreamSettings()
        self._pushes: dict[int, RtmpPush] = {}
        self._last: dict[int, PushStatus] = {}
        self._stills = _Stills()
        self._closed = False

    def start(self, target: RtmpTarget, card: TitleCard) -> PushStatus:
        """Starts pushing to `target` (again, with its current URL and key, if it was running)."""
        if self._closed or self.feed.closed:
            raise RuntimeError(f"show {self.feed.show_id} has ended")
        self.stop(target.destination_id)
        push = RtmpPush(self.feed, target, card, self.settings, stills=self._stills)
        self._pushes[target.destination_id] = push
        push.start()
        return push.status

    def stop(self, destination_id: int) -> PushStatus | None:
        push = self._pushes.pop(destination_id, None)
        if push is None:
            return self._last.get(destination_id)
        push.stop()
        status = replace(push.status, state=PushState.stopped, retry_at=None, live_since=None)
        self._last[destination_id] = status
        return status

    def status(self, destination_id: int) -> PushStatus | None:
        push = self._pushes.get(destination_id)
        return push.status if push is not None else self._last.get(destination_id)

    def statuses(self) -> dict[int, PushStatus]:
        found = dict(self._last)
        found.update({i: push.status for i, push in self._pushes.items()})
        return found

    def push(self, destination_id: int) -> RtmpPush | None:
        return self._pushes.get(destination_id)

    def close(self) -> None:
        """The show has ended: every push stops (without waiting for any)."""
        self._closed = True
        for destination_id in list(self._pushes):
            self.stop(destination_id)


def show_restream(feed: ProgramFeed, settings: RestreamSettings | None = None) -> ShowRestream:
    """The show's one `ShowRestream` (the first caller's settings apply)."""
    return feed.shared("restream", lambda: ShowRestream(feed, settings))
