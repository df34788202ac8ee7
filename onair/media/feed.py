"""The per-show hub between a studio and its outputs: program frames in, titles, shared outputs.

The studio calls `ProgramFeed.publish` every 20 ms and `ProgramFeed.set_title` when a song
becomes audible. Outputs never see listeners here: only encoders subscribe to frames, so a
publish costs one queue put per running encoder whatever the audience. Everything an output
shares per show (one encoder per format, one Icecast mount, one HLS packager) hangs off the feed
through `ProgramFeed.shared`, so it lives and ends with the show.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast, runtime_checkable

from onair.media.audience import Audience
from onair.studio.frames import SAMPLE_RATE, ProgramFrame

__all__ = ["FeedLookup", "FrameSubscriber", "ProgramFeed", "StationInfo", "TitleChange"]

log = logging.getLogger("onair.media.feed")

T = TypeVar("T")

MAX_TITLES = 64
"""Title changes kept: enough to cover every buffer an output holds (minutes, not hours)."""


class FrameSubscriber(Protocol):
    """Takes program frames; `push` must return at once (it runs inside the studio's tick)."""

    def push(self, frame: ProgramFrame) -> None: ...


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class _CountsAudience(Protocol):
    @property
    def audience(self) -> Audience: ...


@dataclass(frozen=True)
class StationInfo:
    """What a stream says about itself (Icecast's icy-* headers, playlist titles)."""

    name: str
    genre: str = ""
    description: str = ""
    url: str = ""
    on_air_since: float | None = None
    """Unix time the show went on air, whichever node's studio started it: HLS timestamps count
    from it, so they run on across a handover to another node's studio."""


@dataclass(frozen=True, slots=True)
class TitleChange:
    pts: int
    """The program sample at which the song is heard."""
    title: str
    """"Artist - Title", as ICY's StreamTitle carries it."""


class ProgramFeed:
    """One live show's program as its outputs see it. Thread-safe.

    `encoder_grace` is how long an encoder keeps running after its last consumer leaves, so a
    player that reconnects (or a page reload) does not restart it.
    """

    def __init__(
        self, show_id: int, info: StationInfo | None = None, *, encoder_grace: float = 5.0
    ) -> None:
        self.show_id = show_id
        self.info = info or StationInfo(name=f"OnAir show {show_id}")
        self.encoder_grace = encoder_grace
        self._lock = threading.Lock()
        # Copy-on-write, so publish (every 20 ms) reads it without taking the lock.
        self._subscribers: tuple[FrameSubscriber, ...] = ()
        self._titles: tuple[TitleChange, ...] = ()
        self._shared: dict[str, object] = {}
        self._anchor: tuple[int, float] | None = None
        self._closed = False

    # --- the studio's side

    def publish(self, frame: ProgramFrame) -> None:
        """Hands one frame to every running encoder; O(encoders), never O(listeners)."""
        self._anchor = (frame.pts, frame.wallclock)
        for subscriber in self._subscribers:
            try:
                subscriber.push(frame)
            except Exception:
                # One broken output must not silence the others or stall the studio.
                log.exception("frame subscriber failed show=%s", self.show_id)

    def set_title(self, pts: int, title: str) -> None:
        """Records that `title` ("Artist - Title") is heard from program sample `pts` on."""
        with self._lock:
            titles = [t for t in self._titles if t.pts != pts]
            bisect.insort(titles, TitleChange(pts, title), key=lambda t: t.pts)
            self._titles = tuple(titles[-MAX_TITLES:])

    def close(self) -> None:
        """The show has ended: stops every shared output (encoders, mounts, packagers)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            outputs = list(self._shared.values())
        for output in outputs:
            if isinstance(output, _Closable):
                try:
                    output.close()
                except Exception:
                    log.exception("closing an output failed show=%s", self.show_id)

    # --- the outputs' side

    @property
    def closed(self) -> bool:
        return self._closed

    def title_at(self, pts: int) -> str:
        """The title heard at program sample `pts` ("" before the first one)."""
        titles = self._titles
        i = bisect.bisect_right(titles, pts, key=lambda t: t.pts)
        return titles[i - 1].title if i else ""

    def titles_between(self, start: int, end: int) -> tuple[TitleChange, ...]:
        """Title changes heard in [start, end)."""
        return tuple(t for t in self._titles if start <= t.pts < end)

    def wallclock_at(self, pts: int) -> float | None:
        """The Unix time sample `pts` is heard at the studio, from the latest frame."""
        anchor = self._anchor
        if anchor is None:
            return None
        return anchor[1] + (pts - anchor[0]) / SAMPLE_RATE

    def subscribe(self, subscriber: FrameSubscriber) -> None:
        with self._lock:
            if subscriber not in self._subscribers:
                self._subscribers = (*self._subscribers, subscriber)

    def unsubscribe(self, subscriber: FrameSubscriber) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s != subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """The show's one `key` output, made by `factory` on first use.

        `factory` runs under the feed's lock, so it must only construct (never start threads
        or call back into the feed).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"show {self.show_id} has ended")
            output = self._shared.get(key)
            if output is None:
                output = self._shared[key] = factory()
            return cast(T, output)

    def existing(self, key: str) -> object | None:
        """The `key` output if one was made, without making it."""
        with self._lock:
            return self._shared.get(key)

    def audience(self) -> Audience:
        """Listeners by kind across the outputs that tell (the play log, the analytics' samples)."""
        with self._lock:
            outputs = list(self._shared.values())
        total = Audience()
        for output in outputs:
            if isinstance(output, _CountsAudience):
                total += output.audience
        return total


FeedLookup = Callable[[int], ProgramFeed | None]
"""Show id → its feed, or None when the show is not live."""
