"""What `/metrics` tells Prometheus about this node, read from the live objects when scraped.

Nothing here runs per frame, per packet or per event: the studio, the encoders and the room
fan-out keep plain counters of their own (`StudioStats.lateness_counts`,
`Encoder.encode_seconds`, `Room.deliveries`) and `NodeCollector` reads them, with the
listeners and clients, only when Prometheus asks. The one thing counted per request is the
HTTP status class (`CountResponses`: an add to a list slot). Each app has its own
`CollectorRegistry`, so two apps in one process (the tests' nodes) never mix their figures.

Series labelled by `show` come and go with the show's studio on this node; their counters
start from zero with each studio, which Prometheus' `rate()` takes as a reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onair.media.encoder import Encoder
from onair.media.hls import HlsPackager
from onair.media.icecast import IcecastMount
from onair.studio.studio import LATENESS_BUCKETS

if TYPE_CHECKING:
    from onair.context import OnAir

__all__ = ["TRANSPORTS", "CountResponses", "HttpCounts", "NodeCollector", "node_registry"]

TRANSPORTS = ("mp3", "aac", "hls", "webrtc")
"""How a listener listens, as /metrics labels it (smart speakers count under what they play)."""
_ENCODER_FORMATS = ("mp3", "aac", "opus")
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class HttpCounts:
    """Responses by status class, and requests that ended in an exception."""

    __slots__ = ("by_class", "exceptions")

    def __init__(self) -> None:
        self.by_class = [0] * 6
        """Indexed by the status' hundreds digit (slot 0 unused)."""
        self.exceptions = 0


class CountResponses:
    """Pure ASGI: counts each HTTP response's status class. WebSockets pass untouched, and
    `receive` is never wrapped (the streams and the notification stream find the server's
    connection through it)."""

    def __init__(self, app: ASGIApp, counts: HttpCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts = self.counts
        started = False

        async def counted(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                counts.by_class[min(5, max(1, message["status"] // 100))] += 1
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except asyncio.CancelledError:  # the client left, or the server is stopping
            raise
        except Exception:
            if not started:  # the server answers 500 for it, outside the app
                counts.by_class[5] += 1
            counts.exceptions += 1
            raise


class NodeCollector(Collector):
    """This node's live shows, listeners, studios, encoders, rooms and HTTP answers."""

    def __init__(self, onair: OnAir, http: HttpCounts) -> None:
        self._onair = onair
        self._http = http

    def collect(self) -> Iterable[Metric]:
        yield from self._shows()
        yield from self._rooms()
        yield from self._http_answers()

    def _shows(self) -> Iterator[Metric]:
        stations = self._onair.stations
        live = stations.live()
        listeners = dict.fromkeys(TRANSPORTS, 0)
        lateness = HistogramMetricFamily(
            "onair_studio_frame_lateness_seconds",
            "How late the studio's 20 ms frame loop rendered each frame (past its due time).",
            labels=["show"],
        )
        encode = CounterMetricFamily(
            "onair_encoder_seconds",
            "Time the show's encoders spent converting, encoding and handing out packets.",
            labels=["show", "format"],
        )
        dropped = CounterMetricFamily(
            "onair_encoder_dropped_frames",
            "Program frames an encoder lost because its worker was behind.",
            labels=["show", "format"],
        )
        running = dict.fromkeys(_ENCODER_FORMATS, 0)
        for station in live:
            show = str(station.show_id)
            feed = station.feed
            for fmt in ("mp3", "aac"):
                mount = feed.existing(f"icecast.{fmt}")
                if isinstance(mount, IcecastMount):
                    listeners[fmt] += mount.listener_count
            packager = feed.existing("hls")
            if isinstance(packager, HlsPackager):
                listeners["hls"] += packager.listener_count
            listeners["webrtc"] += stations.webrtc.audience(station.show_id).webrtc
            stats = station.studio.stats
            buckets: list[tuple[str, float]] = []
            cumulative = 0
            for bound, count in zip(LATENESS_BUCKETS, stats.lateness_counts, strict=False):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", sum(stats.lateness_counts)))
            lateness.add_metric([show], buckets, stats.lateness_sum_s)
            for fmt in _ENCODER_FORMATS:
                encoder = feed.existing(f"encoder.{fmt}")
                if not isinstance(encoder, Encoder):
                    continue
                encode.add_metric([show, fmt], encoder.encode_seconds)
                dropped.add_metric([show, fmt], encoder.dropped_frames)
                running[fmt] += encoder.running
        shows = GaugeMetricFamily(
            "onair_live_shows", "Live shows whose studio runs on this node.", value=len(live)
        )
        by_transport = GaugeMetricFamily(
            "onair_listeners",
            "Listeners of this node's live shows, by transport.",
            labels=["transport"],
        )
        for transport, count in listeners.items():
            by_transport.add_metric([transport], count)
        encoders = GaugeMetricFamily(
            "onair_encoders_running",
            "Encoders running (one per show and format while someone listens to it).",
            labels=["format"],
        )
        for fmt, count in running.items():
            encoders.add_metric([fmt], count)
        yield from (shows, by_transport, lateness, encode, dropped, encoders)

    def _rooms(self) -> Iterator[Metric]:
        rooms = self._onair.rooms.rooms()
        yield GaugeMetricFamily(
            "onair_websocket_clients",
            "Room WebSocket connections on this node.",
            value=sum(len(room.clients) for room in rooms),
        )
        yield CounterMetricFamily(
            "onair_room_deliveries",
            "Room events (chat, reactions, now playing, stage...) handed to WebSocket clients.",
            value=sum(room.deliveries for room in rooms),
        )
        yield CounterMetricFamily(
            "onair_chat_deliveries",
            "Public chat events handed to WebSocket clients (one per message per client).",
            value=sum(room.chat_deliveries for room in rooms),
        )

    def _http_answers(self) -> Iterator[Metric]:
        http = self._http
        requests = CounterMetricFamily(
            "onair_http_requests",
            "HTTP responses of the app by status class (streams served ahead of it not counted).",
            labels=["status_class"],
        )
        for i, name in enumerate(_STATUS_CLASSES, start=1):
            requests.add_metric([name], http.by_class[i])
        yield requests
        yield CounterMetricFamily(
            "onair_http_exceptions",
            "HTTP requests that ended in an unhandled exception (answered 500).",
            value=http.exceptions,
        )


def node_registry(onair: OnAir, http: HttpCounts) -> CollectorRegistry:
    """The app's own registry: OnAir's figures and the process' (memory, CPU, files, GC)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(onair, http))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
