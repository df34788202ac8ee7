"""One Opus packet to every WebRTC listener of a show, from one loop.

aiortc runs a sender per peer connection: a task per listener waking for every packet, an
`RtpPacket` object, header extensions and a coroutine chain down to the socket. For a radio
show every listener gets the same packet, so after aiortc has done ICE and DTLS for a listener
we take over the sending: per listener and packet there is a 12-byte header rewrite, one SRTP
`protect` with that listener's DTLS-derived keys and one datagram send on the socket ICE
selected. Sender reports (RTCP SR) go out every few seconds per listener, not per packet.

The hand-over reads aiortc and aioice internals (`RTCDtlsTransport._tx_srtp`, the ICE
connection's nominated pair); `RtpRoute.of` checks them and says which one moved if aiortc
changes, rather than sending nothing.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pylibsrtp
from aiortc import RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)

log = logging.getLogger("onair.media.rtp_fanout")

RTP_CLOCK = 48_000
REPORT_INTERVAL = 5.0
"""Seconds between a listener's sender reports (RFC 3550 allows 5 s as the minimum interval)."""
MAX_BUFFERED = 32 * 1024
"""Bytes a listener's socket may hold unsent before its packets are skipped, not queued:
late audio is useless, and one stuck socket must not grow memory for the show."""

_SEQ_TS = struct.Struct("!HI")


class FanoutUnavailable(RuntimeError):
    """aiortc's internals are not where this module expects them (an aiortc upgrade)."""


@dataclass(eq=False, slots=True)
class RtpRoute:
    """Where and how one listener's packets go, taken from aiortc once DTLS is up."""

    srtp: pylibsrtp.Session
    sendto: Callable[[bytes, tuple[str, int]], None]
    """The ICE-selected socket's asyncio transport `sendto`."""
    buffered: Callable[[], int]
    """That transport's unsent bytes (asyncio's selector transports count them)."""
    addr: tuple[str, int]
    header: bytearray
    """RTP header with the listener's payload type, SSRC and mid; seq and timestamp are
    rewritten in place for every packet."""
    ssrc: int
    cname: str
    # Random starting points, as RFC 3550 asks; the sequence number starts in its lower half
    # so it cannot wrap within the first packets (libsrtp's receivers mis-guess the rollover
    # counter there; aiortc and Chrome pick theirs the same way).
    seq_offset: int = field(default_factory=lambda: random.getrandbits(15))
    ts_offset: int = field(default_factory=lambda: random.getrandbits(32))
    first_seq: int = 0
    first_octets: int = 0
    next_report: float = 0.0

    @classmethod
    def of(cls, sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> RtpRoute:
        """The route for an aiortc sender whose DTLS transport is connected."""
        opus = next((c for c in parameters.codecs if c.mimeType.lower() == "audio/opus"), None)
        if opus is None or opus.payloadType is None:
            raise FanoutUnavailable("Opus was not negotiated")
        dtls = sender.transport
        srtp = getattr(dtls, "_tx_srtp", None)
        if not isinstance(srtp, pylibsrtp.Session):
            raise FanoutUnavailable("RTCDtlsTransport._tx_srtp is not an SRTP session")
        connection = getattr(dtls.transport, "_connection", None)
        nominated = getattr(connection, "_nominated", None)
        pair = nominated.get(1) if isinstance(nominated, dict) else None
        protocol = getattr(pair, "protocol", None)
        transport = getattr(protocol, "transport", None)
        addr = getattr(pair, "remote_addr", None)
        # asyncio's UDP transport is not a DatagramTransport subclass, so ask for what is used.
        sendto = getattr(transport, "sendto", None)
        buffered = getattr(transport, "get_write_buffer_size", None)
        if not callable(sendto) or addr is None:
            raise FanoutUnavailable("the ICE connection has no nominated UDP pair")
        if not callable(buffered):
            raise FanoutUnavailable(f"{type(transport).__name__} does not count unsent bytes")

        extensions = HeaderExtensionsMap()
        extensions.configure(parameters)
        template = RtpPacket(payload_type=opus.payloadType, ssrc=sender._ssrc)
        # The mid lets a browser match the stream to its m-line without relying on a=ssrc.
        template.extensions.mid = parameters.muxId or None
        return cls(
            srtp=srtp,
            sendto=sendto,
            buffered=buffered,
            addr=(str(addr[0]), int(addr[1])),
            header=bytearray(template.serialize(extensions)),
            ssrc=sender._ssrc,
            cname=parameters.rtcp.cname or "",
        )


class RtpFanout:
    """The listeners of one show and the one loop that sends each packet to all of them."""

    def __init__(self, report_interval: float = REPORT_INTERVAL) -> None:
        self.report_interval = report_interval
        self._routes: dict[str, RtpRoute] = {}
        self._seq = 0
        self._octets = 0
        self._last_ts = 0
        self._last_sent_at = 0.0
        self.skipped = 0
        """Packets not sent to a listener whose socket was full, since the start."""

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, key: object) -> bool:
        return key in self._routes

    def add(self, key: str, route: RtpRoute) -> None:
        route.first_seq = self._seq
        route.first_octets = self._octets
        # Spread the reports over the interval, so a burst of joins does not report in step.
        route.next_report = time.monotonic() + random.uniform(0.5, 1.0) * self.report_interval
        self._routes[key] = route

    def remove(self, key: str) -> None:
        self._routes.pop(key, None)

    def send(self, payload: bytes, pts: int) -> None:
        """Sends one Opus packet, `pts` in 48 kHz samples, to every listener."""
        seq, self._seq = self._seq, self._seq + 1
        self._octets += len(payload)
        self._last_ts = pts
        self._last_sent_at = time.monotonic()
        broken: list[str] = []
        pack_into = _SEQ_TS.pack_into
        join = b"".join
        for key, route in self._routes.items():
            try:
                if route.buffered() > MAX_BUFFERED:
                    self.skipped += 1
                    continue
                header = route.header
                pack_into(
                    header,
                    2,
                    (seq + route.seq_offset) & 0xFFFF,
                    (pts + route.ts_offset) & 0xFFFFFFFF,
                )
                route.sendto(route.srtp.protect(join((header, payload))), route.addr)
            except Exception as exc:
                # One listener's broken session must not cost the others this packet.
                log.warning("rtp send failed (%r); dropping listener session=%s", exc, key)
                broken.append(key)
        for key in broken:
            self.remove(key)

    def send_reports(self) -> None:
        """Sends an RTCP sender report to each listener whose interval has passed."""
        now = time.monotonic()
        ntp = current_ntp_time()
        ts = self._last_ts + round((now - self._last_sent_at) * RTP_CLOCK)
        for route in self._routes.values():
            if route.next_report > now:
                continue
            route.next_report = now + self.report_interval * random.uniform(0.8, 1.2)
            report = RtcpSrPacket(
                ssrc=route.ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp,
                    rtp_timestamp=(ts + route.ts_offset) & 0xFFFFFFFF,
                    packet_count=(self._seq - route.first_seq) & 0xFFFFFFFF,
                    octet_count=(self._octets - route.first_octets) & 0xFFFFFFFF,
                ),
            )
            # RFC 3550 compound RTCP: a report, then the CNAME.
            cname = RtcpSdesPacket(
                chunks=[RtcpSourceInfo(ssrc=route.ssrc, items=[(1, route.cname.encode())])]
            )
            try:
                packet = route.srtp.protect_rtcp(bytes(report) + bytes(cname))
                route.sendto(packet, route.addr)
            except (pylibsrtp.Error, OSError) as exc:
                log.debug("sender report failed ssrc=%s: %s", route.ssrc, exc)
