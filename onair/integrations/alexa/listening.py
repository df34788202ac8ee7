"""Alexa devices playing a show, from AudioPlayer's PlaybackStarted and PlaybackStopped.

Each show's Alexa listeners are one more output of its program feed (`feed.shared("alexa")`),
reporting an `Audience` of smart speakers like the Icecast mounts and the HLS packager do, so
the station, the play log and the analytics count them with no code of their own.

An Echo also fetches the stream itself, and the streams already count a client whose
User-Agent names a smart speaker (`is_smart_speaker`: AlexaMediaPlayer). So a device is counted
once: the Alexa report adds only the devices the streams do not see (an Echo behind a proxy
that rewrites its User-Agent, a stream served by a CDN), and a start adds a join only then.
"""

from __future__ import annotations

import logging
import threading

from onair.media.audience import Audience
from onair.media.feed import FeedLookup, ProgramFeed

__all__ = ["AlexaListeners", "SpeakerPlayback"]

log = logging.getLogger("onair.integrations.alexa")

_STREAM_OUTPUTS = ("icecast.aac", "icecast.mp3", "hls")


class AlexaListeners:
    """The Alexa devices playing one show, as its feed's `alexa` output."""

    def __init__(self, feed: ProgramFeed) -> None:
        self.feed = feed
        self._devices: set[str] = set()
        self._joins = 0
        self._lock = threading.Lock()

    @property
    def devices(self) -> int:
        return len(self._devices)

    def start(self, device: str) -> None:
        with self._lock:
            if device in self._devices:
                return
            self._devices.add(device)
            unseen = len(self._devices) > self._streamed_speakers()
            if unseen:
                self._joins += 1

    def stop(self, device: str) -> None:
        with self._lock:
            self._devices.discard(device)

    @property
    def audience(self) -> Audience:
        extra = max(0, len(self._devices) - self._streamed_speakers())
        return Audience(smart_speaker=extra, joins=self._joins)

    def _streamed_speakers(self) -> int:
        seen = 0
        for key in _STREAM_OUTPUTS:
            output = self.feed.existing(key)
            audience = getattr(output, "audience", None)
            if isinstance(audience, Audience):
                seen += audience.smart_speaker
        return seen


class SpeakerPlayback:
    """Which show each Alexa device plays: one show at a time per device."""

    def __init__(self, lookup_feed: FeedLookup) -> None:
        self._lookup = lookup_feed
        self._playing: dict[str, int] = {}
        self._lock = threading.Lock()

    def started(self, device: str, show_id: int) -> None:
        with self._lock:
            before = self._playing.get(device)
            self._playing[device] = show_id
        if before is not None and before != show_id:
            self._leave(device, before)
        feed = self._lookup(show_id)
        if feed is None or feed.closed:
            return
        try:
            listeners = feed.shared("alexa", lambda: AlexaListeners(feed))
        except RuntimeError:  # the show ended a moment ago
            return
        listeners.start(device)
        log.info("alexa playback started show=%s", show_id)

    def stopped(self, device: str) -> None:
        with self._lock:
            show_id = self._playing.pop(device, None)
        if show_id is not None:
            self._leave(device, show_id)
            log.info("alexa playback stopped show=%s", show_id)

    def playing(self, device: str) -> int | None:
        return self._playing.get(device)

    def _leave(self, device: str, show_id: int) -> None:
        feed = self._lookup(show_id)
        listeners = feed.existing("alexa") if feed is not None else None
        if isinstance(listeners, AlexaListeners):
            listeners.stop(device)
