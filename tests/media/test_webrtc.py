"""WebRTC transport: aiortc clients on this machine listen over WHEP and go on air as the host.

Everything here is real audio checked as audio: a 440 Hz "program" encoded to Opus once, a
1 kHz "voice" from the host's client, both decoded on the far side and measured by spectrum.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
)
from fastapi import FastAPI, Request

from onair.errors import forbidden, install_error_handlers, not_found
from onair.media.webrtc import (
    FanoutMode,
    GoneReason,
    ShowMedia,
    VoiceLink,
    WebRtcService,
)
from onair.media.whep import webrtc_router
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame, Samples
from tests.media import Client, connect, new_client, offer

pytestmark = pytest.mark.media

LIVE, OFF_AIR = 1, 2
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
Mono = npt.NDArray[np.float64]


def tone(freq: float, start: int, n: int = FRAME_SAMPLES, level: float = 0.3) -> Samples:
    t = (np.arange(n) + start) / SAMPLE_RATE
    mono = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.vstack([mono, mono])


def encode_opus(freq: float, seconds: float) -> list[bytes]:
    """A tone encoded to Opus once, the way the studio's encoder feeds every listener."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = TIME_BASE
    codec.bit_rate = 64_000
    packets: list[bytes] = []
    for i in range(int(seconds * 50)):
        pcm = (tone(freq, i * FRAME_SAMPLES) * 32767).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets


async def paced(count: int | None = None) -> AsyncIterator[int]:
    """Frame numbers at 20 ms, against the clock so jitter in one wait does not accumulate."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    i = 0
    while count is None or i < count:
        await asyncio.sleep(max(0.0, start + i * 0.02 - loop.time()))
        yield i
        i += 1


@dataclass(frozen=True, slots=True)
class OpusPacket:
    data: bytes
    pts: int


@dataclass
class ToneProgram:
    """A fake show program: 1 s of 440 Hz Opus looped, one packet per 20 ms."""

    packets_once: list[bytes]
    opened: int = 0
    open_now: int = 0
    ends_after: int | None = None
    """Packets until the source ends (the studio stopped), or None for never."""

    async def packets(self) -> AsyncIterator[OpusPacket]:
        self.opened += 1
        self.open_now += 1
        try:
            async for i in paced(self.ends_after):
                data = self.packets_once[i % len(self.packets_once)]
                yield OpusPacket(data=data, pts=i * FRAME_SAMPLES)
        finally:
            self.open_now -= 1


@dataclass
class FakeVoice:
    """The studio's side of a host's line: collects the mic, returns a 440 Hz mix-minus."""

    pushed: list[Samples] = field(default_factory=list)
    hints: list[int | None] = field(default_factory=list)
    gone: list[GoneReason] = field(default_factory=list)

    def push(self, samples: Samples, pts_hint: int | None = None) -> None:
        self.pushed.append(samples)
        self.hints.append(pts_hint)

    async def frames(self) -> AsyncIterator[ProgramFrame]:
        async for i in paced():
            pts = i * FRAME_SAMPLES
            yield ProgramFrame(pts=pts, wallclock=time.time(), samples=tone(440.0, pts))

    def link(self) -> VoiceLink:
        return VoiceLink(sink=self, returns=self.frames(), on_gone=self.gone.append)


class ToneTrack(MediaStreamTrack):
    """The host's "microphone": a 1 kHz tone, in real time."""

    kind = "audio"

    def __init__(self, freq: float) -> None:
        super().__init__()
        self._freq = freq
        self._frames = paced()

    async def recv(self) -> av.AudioFrame:
        i = await anext(self._frames)
        pcm = (tone(self._freq, i * FRAME_SAMPLES) * 32767).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        return frame


def band_db(signal: Mono, freq: float) -> float:
    """Energy within ±30 Hz of `freq`, in dB relative to the whole signal's energy."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    band = spectrum[(freqs > freq - 30) & (freqs < freq + 30)].sum()
    return float(10 * np.log10(band / spectrum.sum() + 1e-30))


def assert_tone(signal: Mono, present: float, absent: float | None = None) -> None:
    assert len(signal) >= SAMPLE_RATE // 2, f"only {len(signal)} samples arrived"
    assert np.sqrt(np.mean(signal**2)) > 0.05, "the audio is (nearly) silent"
    assert band_db(signal, present) > -1.0, f"{present} Hz is not what is heard"
    if absent is not None:
        assert band_db(signal, absent) < -40.0, f"{absent} Hz leaks into the audio"


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {within} s"
        await asyncio.sleep(0.02)


async def eventually(probe: Callable[[], Awaitable[int | None]], within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while (value := await probe()) is None:
        assert time.monotonic() < deadline, f"still nothing after {within} s"
        await asyncio.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def program_packets() -> list[bytes]:
    return encode_opus(440.0, 1.0)


@pytest.fixture(params=["lean", "sender"])
def fanout(request: pytest.FixtureRequest) -> FanoutMode:
    mode: FanoutMode = request.param
    return mode


@dataclass
class Studio:
    service: WebRtcService
    program: ToneProgram
    voice: FakeVoice
    http: httpx.AsyncClient
    clients: list[Client] = field(default_factory=list)

    def client(self, *, send: MediaStreamTrack | None = None) -> Client:
        self.clients.append(new_client(send=send))
        return self.clients[-1]


@pytest.fixture
async def studio(program_packets: list[bytes], fanout: FanoutMode) -> AsyncIterator[Studio]:
    program = ToneProgram(program_packets)
    voice = FakeVoice()
    service = WebRtcService(fanout=fanout, connect_timeout=5.0, report_interval=1.0)

    async def lookup(show_id: int) -> ShowMedia | None:
        if show_id == LIVE:
            return ShowMedia(program=program, open_voice=lambda _voice_id: voice.link())
        if show_id == OFF_AIR:
            return None
        raise not_found("show")

    def authorize(show_id: int, request: Request) -> str:
        if request.headers.get("x-test-host") != "yes":
            raise forbidden("only the show's host may go on air")
        return f"host-of-{show_id}"

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(webrtc_router(service, lookup, authorize))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        state = Studio(service, program, voice, http)
        yield state
        for client in state.clients:
            await client.pc.close()
        await service.aclose()


async def test_two_listeners_hear_the_program_encoded_once(studio: Studio) -> None:
    a = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    b = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    assert a.location.startswith(f"/api/v1/shows/{LIVE}/whep/") and a.location != b.location
    await until(lambda: len(a.heard) > 10 and len(b.heard) > 10)

    before = [await a.packets_received(), await b.packets_received()]
    started = time.monotonic()
    await asyncio.sleep(1.5)
    after = [await a.packets_received(), await b.packets_received()]
    rates = [(n1 - n0) / (time.monotonic() - started) for n0, n1 in zip(before, after, strict=True)]
    assert all(42 <= rate <= 58 for rate in rates), rates

    for client in (a, b):
        assert_tone(client.last_seconds(1.0), present=440.0, absent=1000.0)
        # The server's RTCP sender reports (every 1 s here) parse, and count what was sent.
        reported = await eventually(client.packets_reported_sent)
        assert 0 < reported <= await client.packets_received() + 5
    hub = studio.service.existing_hub(LIVE)
    assert hub is not None and hub.sending_count == 2
    assert studio.program.opened == 1, "the program must be read once for all listeners"


async def test_host_mic_reaches_the_studio_and_mix_minus_comes_back(studio: Studio) -> None:
    host = studio.client(send=ToneTrack(1000.0))
    path = f"/api/v1/shows/{LIVE}/studio/webrtc"
    r = await studio.http.post(
        path, content=await offer(host), headers={"content-type": "application/sdp"}
    )
    assert r.status_code == 403, "the authorize dependency guards the studio line"

    host = studio.client(send=ToneTrack(1000.0))
    host = await connect(studio.http, host, path, headers={"x-test-host": "yes"})
    await until(lambda: len(studio.voice.pushed) > 60 and len(host.heard) > 60)

    mic = np.concatenate(studio.voice.pushed[-50:], axis=1)
    assert mic.shape[0] == 2 and mic.dtype == np.float32
    hints = studio.voice.hints[-50:]
    steps = {b - a for a, b in itertools.pairwise(hints) if a is not None and b is not None}
    assert steps == {FRAME_SAMPLES}, "pts hints follow the sender's RTP clock"
    assert_tone(mic.mean(axis=0).astype(np.float64), present=1000.0, absent=440.0)
    assert_tone(host.last_seconds(1.0), present=440.0, absent=1000.0)

    # Closing the page without a DELETE is noticed (DTLS close_notify), and the studio told.
    await host.pc.close()
    await until(lambda: studio.voice.gone == ["closed"])
    assert studio.service.voice_line(LIVE, host.location.rsplit("/", 1)[1]) is None


async def test_host_rejoins_and_leaves(studio: Studio) -> None:
    path = f"/api/v1/shows/{LIVE}/studio/webrtc"
    headers = {"content-type": "application/sdp", "x-test-host": "yes"}
    first = studio.client(send=ToneTrack(1000.0))
    r = await studio.http.post(path, content=await offer(first), headers=headers)
    assert r.status_code == 201, r.text
    second = studio.client(send=ToneTrack(1000.0))
    r = await studio.http.post(path, content=await offer(second), headers=headers)
    assert r.status_code == 201, r.text
    assert studio.voice.gone == ["replaced"], "a rejoin replaces the old line first"

    r = await studio.http.delete(r.headers["location"], headers=headers)
    assert r.status_code == 204
    assert studio.voice.gone == ["replaced", "left"]


async def test_delete_ends_a_listening_session(studio: Studio) -> None:
    client = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    await until(lambda: len(client.heard) > 5)
    assert studio.program.open_now == 1

    r = await studio.http.delete(client.location)
    assert r.status_code == 204
    assert studio.service.existing_hub(LIVE) is None
    await until(lambda: client.pc.connectionState == "closed")
    assert studio.program.open_now == 0, "nobody listens, so the program is no longer read"

    r = await studio.http.delete(client.location)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_a_listener_that_disappears_is_cleaned_up(studio: Studio) -> None:
    stays = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    leaves = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    await until(lambda: len(leaves.heard) > 5)
    hub = studio.service.existing_hub(LIVE)
    assert hub is not None and hub.listener_count == 2

    await leaves.pc.close()  # no DELETE: a closed tab
    await until(lambda: hub.listener_count == 1)
    heard = len(stays.heard)
    await until(lambda: len(stays.heard) > heard + 10)


async def test_bad_offers_are_refused_as_json(studio: Studio) -> None:
    whep = f"/api/v1/shows/{LIVE}/whep"
    sdp = {"content-type": "application/sdp"}

    async def status(path: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
        r = await studio.http.post(path, content=body, headers=headers)
        assert r.headers["content-type"] == "application/json"
        error = r.json()["error"]
        assert error["message"]
        return r.status_code, error["code"]

    assert await status(whep, "garbage", sdp) == (400, "bad_sdp")
    assert await status(whep, "v=0\r\nm=audio x y\r\n", sdp) == (400, "bad_sdp")

    video_only = Client(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    video_only.pc.addTransceiver("video", direction="recvonly")
    studio.clients.append(video_only)
    assert await status(whep, await offer(video_only), sdp) == (400, "bad_sdp")

    pcmu_only = studio.client()
    pcmu = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
    pcmu_only.pc.getTransceivers()[0].setCodecPreferences(pcmu)
    assert await status(whep, await offer(pcmu_only), sdp) == (400, "bad_sdp")

    good = await offer(studio.client())
    assert await status(whep, good, {"content-type": "text/plain"}) == (
        415,
        "unsupported_media_type",
    )
    assert await status(whep, "x" * 70_000, sdp) == (413, "too_large")
    assert await status(f"/api/v1/shows/{OFF_AIR}/whep", good, sdp) == (409, "not_live")
    assert await status("/api/v1/shows/99/whep", good, sdp) == (404, "not_found")
    assert studio.service.existing_hub(LIVE) is None, "refused offers leave nothing behind"


async def test_listeners_are_let_go_when_the_program_ends(studio: Studio) -> None:
    studio.program.ends_after = 75  # 1.5 s, then the studio's encoder stops
    client = await connect(studio.http, studio.client(), f"/api/v1/shows/{LIVE}/whep")
    await until(lambda: len(client.heard) > 5)
    await until(lambda: client.pc.connectionState == "closed")
    await until(lambda: studio.service.existing_hub(LIVE) is None)


async def test_offers_that_never_connect_are_let_go(studio: Studio) -> None:
    studio.service.connect_timeout = 0.5
    headers = {"content-type": "application/sdp", "x-test-host": "yes"}
    listener, host = studio.client(), studio.client(send=ToneTrack(1000.0))
    r = await studio.http.post(
        f"/api/v1/shows/{LIVE}/whep", content=await offer(listener), headers=headers
    )
    assert r.status_code == 201
    path = f"/api/v1/shows/{LIVE}/studio/webrtc"
    r = await studio.http.post(path, content=await offer(host), headers=headers)
    assert r.status_code == 201
    # Neither client applies its answer: a page that went away mid-setup.
    await until(lambda: studio.voice.gone == ["failed"] and not studio.service.existing_hub(LIVE))
    assert studio.program.open_now == 0
