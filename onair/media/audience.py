"""Who is listening to a show, by how they listen, and how many have joined since it began.

Every output that counts listeners (the Icecast-style mounts, the HLS packager, the WebRTC hub)
reports an `Audience`; the feed and the station add them up. `joins` only ever grows, so the
station tells how many listeners joined during a song by the difference between two readings
(the play log's performances: listeners at the start plus those who joined while it played).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KINDS", "Audience", "is_smart_speaker"]

KINDS = ("webrtc", "hls", "stream", "smart_speaker")
"""How a listener listens: WebRTC in a browser, HLS, an Icecast-style stream, a smart speaker."""

# Smart speakers and voice assistants that play HTTP streams and say so in their User-Agent:
# Amazon Echo (AlexaMediaPlayer), Sonos, Google Nest and Chromecast audio (CrKey), Apple's
# HomePod (AudioAccessory), Bose, and the Bluesound and Denon HEOS players.
_SMART_SPEAKER = re.compile(
    r"alexa|amazon-?echo|sonos|crkey|google-?home|googlecast|nest-?audio|homepod|"
    r"audioaccessory|bose|bluos|heos",
    re.IGNORECASE,
)


def is_smart_speaker(user_agent: str) -> bool:
    """Whether a stream request's User-Agent names a smart speaker."""
    return bool(user_agent) and _SMART_SPEAKER.search(user_agent) is not None


@dataclass(frozen=True, slots=True)
class Audience:
    webrtc: int = 0
    hls: int = 0
    stream: int = 0
    smart_speaker: int = 0
    joins: int = 0
    """Listeners who have joined so far (a reconnect counts again); never decreases."""

    @property
    def total(self) -> int:
        return self.webrtc + self.hls + self.stream + self.smart_speaker

    def counts(self) -> dict[str, int]:
        return {kind: getattr(self, kind) for kind in KINDS}

    def __add__(self, other: Audience) -> Audience:
        return Audience(
            webrtc=self.webrtc + other.webrtc,
            hls=self.hls + other.hls,
            stream=self.stream + other.stream,
            smart_speaker=self.smart_speaker + other.smart_speaker,
            joins=self.joins + other.joins,
        )
