"""WebRTC for a live show: WHEP listeners fed from one Opus encode, and hosts' microphones in.

Two kinds of peer connection live here, both answered by aiortc:

- a **listener** (WHEP, receive-only) gets the show's program. The program is encoded to Opus
  once per show by the studio; every listener is sent the same packets. Only the per-listener
  transport work (SRTP, a datagram send) is repeated, in one loop (`rtp_fanout.RtpFanout`,
  `fanout="lean"`). The plain aiortc way, one `RTCRtpSender` per listener fed the pre-encoded
  packets (`fanout="sender"`), is kept to compare against and to fall back on.
- a **voice line** (send-receive) carries a host's microphone into the studio, decoded to 48 kHz
  frames for a `VoiceSink`, and sends the host their mix-minus (the program without their own
  voice) back.

This module knows nothing of HTTP; `whep.py` puts it behind the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.sdp import SessionDescription

from onair.media.audience import Audience
from onair.media.rtp_fanout import REPORT_INTERVAL, FanoutUnavailable, RtpFanout, RtpRoute
from onair.studio.frames import CHANNELS, SAMPLE_RATE, ProgramFrame, Samples

log = logging.getLogger("onair.media.webrtc")

OPUS_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
"""Opus' RTP clock is 48 kHz whatever the audio, the same as the studio's pts."""

MAX_OFFER_BYTES = 64 * 1024
"""Browsers' offers are 2-8 KiB; anything far larger is not an offer."""

FanoutMode = Literal["lean", "sender"]
GoneReason = Literal["left", "failed", "closed", "replaced", "show_ended", "off_stage"]


# --- What this module needs from the studio and the encoders


class OpusPacket(Protocol):
    """One 20 ms Opus packet of the program (`onair.media.encoder.EncodedPacket` is one)."""

    @property
    def data(self) -> bytes: ...

    @property
    def pts(self) -> int:
        """Samples at 48 kHz since the studio started: the same clock as `ProgramFrame.pts`."""
        ...


class OpusSource(Protocol):
    """The show's program encoded to Opus once, one packet every 20 ms in real time.

    `packets()` is called when the first WebRTC listener arrives and the iterator is closed
    (`aclose`) when the last one leaves, so the encoder need only run while someone listens.
    """

    def packets(self) -> AsyncIterator[OpusPacket]: ...


class VoiceSink(Protocol):
    """A studio voice input (`onair.studio.voice.VoiceInput` is one).

    Takes 48 kHz float32 audio shaped (2, n); `pts_hint` is its first sample's place in the
    sender's timeline (RTP time), so the input can conceal lost packets and drop late ones.
    """

    def push(self, samples: Samples, pts_hint: int | None = None) -> None: ...


ReturnSource = AsyncIterator[ProgramFrame]
"""A voice's mix-minus (the program without that voice), paced by the studio clock, such as
`Studio.subscribe(voice_id=...)`. It is read until the line ends; `on_gone` should release it."""


@dataclass(frozen=True)
class VoiceLink:
    """What the studio hands out for one voice: where the microphone goes, what comes back."""

    sink: VoiceSink
    returns: ReturnSource
    on_gone: Callable[[GoneReason], None]
    """Called once when the line ends; "failed" means the connection dropped (ICE consent or
    DTLS lost): the studio keeps the music going and the host may post a new offer."""


@dataclass(frozen=True)
class ShowMedia:
    """A live show's media, as the WebRTC transport sees it."""

    program: OpusSource
    open_voice: Callable[[str], VoiceLink] | None = None
    """Opens a voice input by voice id; None when the show takes no WebRTC voices."""


ShowLookup = Callable[[int], Awaitable[ShowMedia | None]]
"""Show id → its media, or None when the show is not on air. Unknown shows may raise."""


# --- Offers


class OfferError(ValueError):
    """The SDP offer cannot be answered; the message says why, for the client's developer."""


def check_offer(sdp: str, *, wants: Literal["receive", "send"]) -> str:
    """Refuse an offer early and clearly, before any sockets are opened for it.

    Returns the direction of the offer's (first) audio m-line, which is the one answered.
    aiortc would answer an offer without Opus with another codec, and an offer without audio
    with nothing useful, so those are caught here rather than from a silent connection.
    """
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # the parser asserts and unpacks freely on untrusted text
        raise OfferError(f"the SDP offer cannot be parsed ({type(exc).__name__})") from exc
    audio = next((m for m in description.media if m.kind == "audio"), None)
    if audio is None:
        raise OfferError("the SDP offer has no audio m-line")
    if not any(_is_opus(c.mimeType) for c in audio.rtp.codecs):
        raise OfferError("the SDP offer does not offer Opus (opus/48000/2)")
    direction = audio.direction or "sendrecv"
    allowed = ("recvonly", "sendrecv") if wants == "receive" else ("sendonly", "sendrecv")
    if direction not in allowed:
        raise OfferError(f"the SDP offer's audio is {direction}; it must be one of {allowed}")
    return direction


def _is_opus(mime_type: str) -> bool:
    return mime_type.lower() == "audio/opus"


def _prefer_opus(transceiver: RTCRtpTransceiver) -> None:
    # Only Opus: the program is encoded once in Opus, and a host's line should not fall back to
    # an 8 kHz codec just because the offer listed it first.
    opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if _is_opus(c.mimeType)]
    transceiver.setCodecPreferences(opus)


async def _answer(pc: RTCPeerConnection, offer: str) -> RTCRtpTransceiver:
    """Apply the offer; returns the audio transceiver. OfferError when aiortc refuses it."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except ValueError as exc:  # aiortc's refusals: missing ICE credentials, fingerprint, ...
        raise OfferError(f"the SDP offer was refused: {exc}") from exc
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            _prefer_opus(transceiver)
            return transceiver
    raise OfferError("the SDP offer has no usable audio m-line")


@dataclass(frozen=True)
class Session:
    """An answered offer: the id for its Location and DELETE, and the SDP answer."""

    id: str
    answer: str


def _session_id() -> str:
    return secrets.token_urlsafe(12)


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    # Closing tells a generator-based source that nobody reads it any more (its `finally`
    # runs now, not whenever the garbage collector gets to it).
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


class _Tasks:
    """Background tasks an object owns, kept referenced until done and cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webrtc background task failed", exc_info=task.exception())

    async def cancel_all(self) -> None:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- Listeners


class _ProgramTrack(MediaStreamTrack):
    """A listener's track for `fanout="sender"`: hands aiortc's sender pre-encoded packets."""

    kind = "audio"

    def __init__(self, depth: int) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet[Any]] = asyncio.Queue(maxsize=depth)

    def offer(self, packet: av.Packet[Any]) -> None:
        # A listener whose sender lags loses the oldest packets instead of slowing the show or
        # growing its delay.
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        return await self._queue.get()


class _SilentTrack(MediaStreamTrack):
    """The track aiortc's sender holds for `fanout="lean"`: the fan-out sends instead, so it
    never yields (and a sender without any track would poll every 20 ms)."""

    kind = "audio"

    async def recv(self) -> av.Packet[Any]:
        await asyncio.Event().wait()
        raise MediaStreamError  # not reached: the wait only ends by cancellation


@dataclass
class _Listener:
    id: str
    pc: RTCPeerConnection
    track: _ProgramTrack | None = None
    connected: bool = False
    timeout: asyncio.TimerHandle | None = None


class WebRtcHub:
    """The WebRTC listeners of one live show.

    The program is read from its `OpusSource` once, by one task, while at least one listener
    is here; each packet goes to every connected listener.
    """

    def __init__(
        self,
        show_id: int,
        program: OpusSource,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        fanout: FanoutMode = "lean",
        connect_timeout: float = 15.0,
        max_listeners: int = 5000,
        report_interval: float = REPORT_INTERVAL,
        on_empty: Callable[[WebRtcHub], None] | None = None,
    ) -> None:
        self.show_id = show_id
        self.program = program
        self.fanout_mode: FanoutMode = fanout
        self._ice_servers = list(ice_servers)
        self._connect_timeout = connect_timeout
        self._max_listeners = max_listeners
        self._on_empty = on_empty
        self._listeners: dict[str, _Listener] = {}
        self._rtp = RtpFanout(report_interval)
        self._pump: asyncio.Task[None] | None = None
        self._tasks = _Tasks()
        self._closed = False
        self.packets_read = 0

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    @property
    def connected_count(self) -> int:
        return sum(1 for listener in self._listeners.values() if listener.connected)

    @property
    def sending_count(self) -> int:
        """Listeners packets are being sent to (connected, and handed to the fan-out)."""
        if self.fanout_mode == "lean":
            return len(self._rtp)
        return self.connected_count

    async def join(self, offer: str) -> Session:
        """Answer a WHEP offer; the listener hears the program once ICE and DTLS are up."""
        if self._closed:
            raise OfferError("the show has ended")
        if len(self._listeners) >= self._max_listeners:
            raise HubFullError(f"show {self.show_id} has {self._max_listeners} WebRTC listeners")
        check_offer(offer, wants="receive")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        listener = _Listener(id=_session_id(), pc=pc)
        try:
            transceiver = await _answer(pc, offer)
            if self.fanout_mode == "lean":
                pc.addTrack(_SilentTrack())
                self._hand_sending_to_fanout(listener, transceiver.sender)
            else:
                listener.track = _ProgramTrack(depth=3)
                pc.addTrack(listener.track)
            # Send only, even to a sendrecv offer: a listener's audio would only be decoded
            # and thrown away.
            transceiver.direction = "sendonly"
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await pc.close()
            raise
        self._listeners[listener.id] = listener
        pc.on("connectionstatechange", lambda: self._on_state(listener))
        listener.timeout = asyncio.get_running_loop().call_later(
            self._connect_timeout, self._give_up, listener
        )
        self._start_pump()
        log.info("listener joined show=%s session=%s", self.show_id, listener.id)
        return Session(id=listener.id, answer=pc.localDescription.sdp)

    async def leave(self, session_id: str, reason: str = "left") -> bool:
        listener = self._listeners.pop(session_id, None)
        if listener is None:
            return False
        if listener.timeout is not None:
            listener.timeout.cancel()
        self._rtp.remove(session_id)
        await listener.pc.close()
        log.info("listener left show=%s session=%s reason=%s", self.show_id, session_id, reason)
        if not self._listeners:
            await self._stop_pump()
            if self._on_empty is not None and not self._closed:
                self._on_empty(self)
        return True

    async def aclose(self, reason: str = "show_ended") -> None:
        self._closed = True
        for session_id in list(self._listeners):
            await self.leave(session_id, reason=reason)
        await self._stop_pump()
        if self._on_empty is not None:
            self._on_empty(self)
        await self._tasks.cancel_all()

    def _hand_sending_to_fanout(self, listener: _Listener, sender: RTCRtpSender) -> None:
        # aiortc calls sender.send(parameters) once DTLS is up, with the negotiated payload
        # type, mid and SRTP keys in place. Taking that call over hands the listener to the
        # shared fan-out and leaves aiortc's per-sender RTP and RTCP tasks unstarted.
        async def send(parameters: RTCRtpSendParameters) -> None:
            if listener.id not in self._listeners:
                return
            try:
                route = RtpRoute.of(sender, parameters)
            except FanoutUnavailable as exc:
                log.error("lean fan-out unavailable (%s); use fanout='sender'", exc)
                self._tasks.spawn(self._leave_quietly(listener.id, "fanout_unavailable"))
                return
            self._rtp.add(listener.id, route)
            # Stop sending the moment DTLS ends, not when aiortc reports the whole connection
            # closed: by then the socket may already be gone.
            dtls = sender.transport
            dtls.on("statechange", lambda: self._on_dtls_state(listener.id, dtls.state))

        sender.send = send  # type: ignore[method-assign]

    def _on_dtls_state(self, session_id: str, state: str) -> None:
        if state in ("closed", "failed"):
            self._rtp.remove(session_id)

    def _on_state(self, listener: _Listener) -> None:
        state = listener.pc.connectionState
        if state == "connected" and not listener.connected:
            listener.connected = True
            if listener.timeout is not None:
                listener.timeout.cancel()
            log.debug("listener connected show=%s session=%s", self.show_id, listener.id)
        elif state in ("failed", "closed") and listener.id in self._listeners:
            # "closed" without a DELETE is a listener that closed its page (DTLS close_notify);
            # "failed" is one that vanished (ICE consent checks stopped being answered).
            self._tasks.spawn(self._leave_quietly(listener.id, state))

    def _give_up(self, listener: _Listener) -> None:
        if not listener.connected and listener.id in self._listeners:
            self._tasks.spawn(self._leave_quietly(listener.id, "connect_timeout"))

    async def _leave_quietly(self, session_id: str, reason: str) -> None:
        await self.leave(session_id, reason=reason)

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _run_pump(self) -> None:
        try:
            packets = self.program.packets()
            try:
                async for packet in packets:
                    self.packets_read += 1
                    self._deliver(packet)
            finally:
                await _aclose(packets)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("program source failed show=%s", self.show_id)
        else:
            log.info("program source ended show=%s", self.show_id)
        # Without a program there is nothing to hear: close the sessions so players notice
        # (and may retry, or fall back to HLS) instead of sitting on a silent connection.
        self._tasks.spawn(self.aclose(reason="program_ended"))

    def _deliver(self, packet: OpusPacket) -> None:
        if self.fanout_mode == "lean":
            self._rtp.send(packet.data, packet.pts)
            if self.packets_read % 50 == 0:
                self._rtp.send_reports()
            return
        # One av.Packet for everyone: aiortc's sender only reads it (bytes, pts, time_base).
        shared = av.Packet(packet.data)
        shared.pts = packet.pts
        shared.time_base = OPUS_TIME_BASE
        for listener in self._listeners.values():
            if listener.connected and listener.track is not None:
                listener.track.offer(shared)


class HubFullError(Exception):
    """The show has as many WebRTC listeners as this node takes; HLS still has room."""


# --- Voice lines (a host's microphone in, their mix-minus back)


def _to_av_frame(frame: ProgramFrame) -> av.AudioFrame:
    pcm = np.clip(frame.samples, -1.0, 1.0) * 32767.0
    interleaved = pcm.astype(np.int16).T.reshape(1, -1)
    out = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
    out.sample_rate = SAMPLE_RATE
    out.pts = frame.pts
    out.time_base = OPUS_TIME_BASE
    return out


class _ReturnTrack(MediaStreamTrack):
    """The host's mix-minus as an aiortc track; aiortc encodes it (one encoder per line)."""

    kind = "audio"

    def __init__(self, source: ReturnSource) -> None:
        super().__init__()
        self._frames = source

    async def recv(self) -> av.AudioFrame:
        try:
            frame = await anext(self._frames)
        except StopAsyncIteration:
            self.stop()
            raise MediaStreamError from None
        return _to_av_frame(frame)

    async def aclose(self) -> None:
        await _aclose(self._frames)


def _jitter_buffered_by_the_studio(pc: RTCPeerConnection) -> None:
    """aiortc's audio receiver holds 4 packets (80 ms) before decoding one; a voice line's
    jitter buffer is the studio's voice input (timestamped, with loss concealment), so the
    receiver hands each packet on as soon as it is whole (when the next one arrives: 20 ms)
    rather than adding a second 80 ms buffer to every conversation. Private aiortc state, set
    before any packet arrives; a future aiortc without it keeps its own buffer."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
            receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=16, prefetch=1)


class VoiceLine:
    """One voice's connection into the studio (a host, a co-host, a caller)."""

    def __init__(self, show_id: int, voice_id: str, pc: RTCPeerConnection) -> None:
        self.id = _session_id()
        self.show_id = show_id
        self.voice_id = voice_id
        self.pc = pc
        self.link: VoiceLink | None = None
        self.connected = False
        self.frames_in = 0
        self.last_heard = time.monotonic()
        """When the last microphone frame (or the connection) arrived: a line that goes
        quiet at the transport level has dropped, long before ICE would say so."""
        self._return: _ReturnTrack | None = None
        self._tasks = _Tasks()
        self._ended = False
        # aiortc announces the remote track while applying the offer, before the studio's
        # voice is opened, so listen from the start; audio only flows once DTLS is up.
        pc.on("track", self._on_track)

    def start(self, link: VoiceLink, send_back: bool) -> None:
        self.link = link
        if send_back:
            self._return = _ReturnTrack(link.returns)
            self.pc.addTrack(self._return)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.spawn(self._read_microphone(track))

    async def _read_microphone(self, track: MediaStreamTrack) -> None:
        # aiortc decodes to s16 stereo; the resampler only reshapes it into the studio's
        # float32 planar form (and would resample a peer that somehow sent another rate).
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.link is None or not isinstance(frame, av.AudioFrame):
                continue
            pts = frame.pts
            for planar in resampler.resample(frame):
                samples = planar.to_ndarray().astype(np.float32, copy=False).reshape(CHANNELS, -1)
                self.link.sink.push(samples, pts_hint=pts)
                self.frames_in += 1
                self.last_heard = time.monotonic()
                pts = None if pts is None else pts + samples.shape[1]

    async def end(self, reason: GoneReason) -> None:
        if self._ended:
            return
        self._ended = True
        await self.pc.close()
        await self._tasks.cancel_all()
        if self._return is not None:
            await self._return.aclose()
        log.info(
            "voice line ended show=%s voice=%s session=%s reason=%s",
            self.show_id,
            self.voice_id,
            self.id,
            reason,
        )
        if self.link is not None:
            self.link.on_gone(reason)


# --- The node's WebRTC sessions


class WebRtcService:
    """Every WebRTC session on this node: one hub per show with listeners, and voice lines.

    Create one per application (the app factory owns it) and `aclose()` it on shutdown; call
    `end_show()` when a show goes off air so its listeners and lines are closed at once.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        fanout: FanoutMode = "lean",
        connect_timeout: float = 15.0,
        voice_timeout: float = 2.0,
        max_listeners_per_show: int = 5000,
        report_interval: float = REPORT_INTERVAL,
    ) -> None:
        self.ice_servers = list(ice_servers)
        self.fanout: FanoutMode = fanout
        self.connect_timeout = connect_timeout
        self.voice_timeout = voice_timeout
        self.max_listeners_per_show = max_listeners_per_show
        self.report_interval = report_interval
        self._hubs: dict[int, WebRtcHub] = {}
        self._lines: dict[tuple[int, str], VoiceLine] = {}
        self._joins: dict[int, int] = {}
        self._tasks = _Tasks()

    def hub(self, show_id: int, program: OpusSource) -> WebRtcHub:
        """The show's hub, made with `program` if it has none. An existing hub keeps the
        program it was made with (lookups may wrap the same encoder in new objects); when a
        show ends, `end_show` closes its hub, and the next listener makes a new one."""
        hub = self._hubs.get(show_id)
        if hub is None:
            hub = WebRtcHub(
                show_id,
                program,
                ice_servers=self.ice_servers,
                fanout=self.fanout,
                connect_timeout=self.connect_timeout,
                max_listeners=self.max_listeners_per_show,
                report_interval=self.report_interval,
                on_empty=self._forget_hub,
            )
            self._hubs[show_id] = hub
        return hub

    def existing_hub(self, show_id: int) -> WebRtcHub | None:
        return self._hubs.get(show_id)

    def _forget_hub(self, hub: WebRtcHub) -> None:
        if self._hubs.get(hub.show_id) is hub:
            del self._hubs[hub.show_id]

    async def listen(self, show_id: int, media: ShowMedia, offer: str) -> Session:
        hub = self.hub(show_id, media.program)
        try:
            session = await hub.join(offer)
        except BaseException:
            if hub.listener_count == 0:
                self._forget_hub(hub)
            raise
        self._joins[show_id] = self._joins.get(show_id, 0) + 1
        return session

    def audience(self, show_id: int) -> Audience:
        """The show's WebRTC listeners, and how many have joined since it went live here."""
        hub = self._hubs.get(show_id)
        listeners = hub.listener_count if hub is not None else 0
        return Audience(webrtc=listeners, joins=self._joins.get(show_id, 0))

    async def stop_listening(self, show_id: int, session_id: str) -> bool:
        hub = self._hubs.get(show_id)
        return hub is not None and await hub.leave(session_id)

    def voice_line(self, show_id: int, session_id: str) -> VoiceLine | None:
        for line in self._lines.values():
            if line.show_id == show_id and line.id == session_id:
                return line
        return None

    async def connect_voice(
        self, show_id: int, voice_id: str, media: ShowMedia, offer: str
    ) -> Session:
        """Answer a host's offer: their microphone into the studio, their mix-minus back.

        A second offer for the same voice replaces the first line (a host rejoining after a
        drop, or from another tab); the old line's `on_gone("replaced")` runs before the new
        voice is opened, so the studio never has two inputs for one voice.
        """
        if media.open_voice is None:
            raise OfferError("this show takes no WebRTC voices")
        direction = check_offer(offer, wants="send")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        line = VoiceLine(show_id, voice_id, pc)
        try:
            await _answer(pc, offer)
            _jitter_buffered_by_the_studio(pc)
            previous = self._lines.pop((show_id, voice_id), None)
            if previous is not None:
                await previous.end("replaced")
            line.start(media.open_voice(voice_id), direction == "sendrecv")
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await line.end("failed")
            raise
        self._lines[(show_id, voice_id)] = line
        pc.on("connectionstatechange", lambda: self._on_line_state(line))
        asyncio.get_running_loop().call_later(self.connect_timeout, self._give_up_line, line)
        self._tasks.spawn(self._watch_line(line))
        log.info("voice line opened show=%s voice=%s session=%s", show_id, voice_id, line.id)
        return Session(id=line.id, answer=pc.localDescription.sdp)

    async def disconnect_voice(self, show_id: int, session_id: str) -> bool:
        line = self.voice_line(show_id, session_id)
        if line is None:
            return False
        self._lines.pop((show_id, line.voice_id), None)
        await line.end("left")
        return True

    async def end_voice(self, show_id: int, voice_id: str) -> bool:
        """Ends `voice_id`'s line into the show because the stage took them off it."""
        line = self._lines.pop((show_id, voice_id), None)
        if line is None:
            return False
        await line.end("off_stage")
        return True

    async def _watch_line(self, line: VoiceLine) -> None:
        """Drops a connected line whose microphone has sent nothing for `voice_timeout`: the
        peer has gone (a closed laptop, a lost network) without saying so."""
        while self._lines.get((line.show_id, line.voice_id)) is line:
            await asyncio.sleep(self.voice_timeout / 6)
            if line.connected and time.monotonic() - line.last_heard > self.voice_timeout:
                log.info("voice line silent show=%s voice=%s", line.show_id, line.voice_id)
                self._drop_line(line, "failed")
                return

    def _on_line_state(self, line: VoiceLine) -> None:
        state = line.pc.connectionState
        if state == "connected":
            line.connected = True
            line.last_heard = time.monotonic()
        elif state in ("failed", "closed"):
            self._drop_line(line, "failed" if state == "failed" else "closed")

    def _give_up_line(self, line: VoiceLine) -> None:
        # An answered offer that never connects (the page went away mid-setup) must not
        # leave a voice open in the studio.
        if not line.connected:
            self._drop_line(line, "failed")

    def _drop_line(self, line: VoiceLine, reason: GoneReason) -> None:
        if self._lines.get((line.show_id, line.voice_id)) is line:
            del self._lines[(line.show_id, line.voice_id)]
            self._tasks.spawn(line.end(reason))

    async def end_show(self, show_id: int) -> None:
        hub = self._hubs.pop(show_id, None)
        if hub is not None:
            await hub.aclose()
        for key in [k for k in self._lines if k[0] == show_id]:
            await self._lines.pop(key).end("show_ended")

    async def aclose(self) -> None:
        for show_id in {*self._hubs, *(k[0] for k in self._lines)}:
            await self.end_show(show_id)
        await self._tasks.cancel_all()
