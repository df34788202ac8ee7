"""Transports that carry a show's program to listeners: Icecast-style HTTP, HLS, WebRTC.

The studio publishes frames and titles into a `ProgramFeed`; each format is encoded once per
show (`shared_encoder`) and fanned out. Mount everything under `/listen` with
`app.mount("/listen", stream_routes(lookup_feed))`.
"""

from onair.media.encoder import (
    AacEncoder,
    EncodedPacket,
    Encoder,
    Mp3Encoder,
    OpusEncoder,
    shared_encoder,
)
from onair.media.feed import FeedLookup, ProgramFeed, StationInfo, TitleChange
from onair.media.hls import HlsPackager, HlsSettings, hls_packager
from onair.media.icecast import (
    IcecastMount,
    StreamFront,
    StreamSettings,
    icecast_mount,
    serve_streams,
    stream_routes,
)

__all__ = [
    "AacEncoder",
    "EncodedPacket",
    "Encoder",
    "FeedLookup",
    "HlsPackager",
    "HlsSettings",
    "IcecastMount",
    "Mp3Encoder",
    "OpusEncoder",
    "ProgramFeed",
    "StationInfo",
    "StreamFront",
    "StreamSettings",
    "TitleChange",
    "hls_packager",
    "icecast_mount",
    "serve_streams",
    "shared_encoder",
    "stream_routes",
]
