"""One show's studio: the program clock, the music deck, the voices on air and the desk.

Every 20 ms the studio renders one ``ProgramFrame``: the deck's next frame of music and each
connected voice's next frame go through the mixer (ducking, limiter), and the result, with a
mix-minus return for each voice, is handed to subscribers (encoders, WebRTC senders, the
recorder). The program clock is the sample count: frame ``k`` has ``pts = k * 960`` and is heard
at ``start + pts / 48000`` seconds of wall-clock time, whatever the event loop's timing.

Two ways to drive it:

- ``await studio.run()`` renders on a monotonic deadline schedule (frame ``k`` is due at
  ``t0 + k * 20 ms``): a late wake-up renders the missed frames at once rather than shifting
  the schedule, so the program never drifts from real time, and lateness is counted;
- ``studio.render_frame()`` renders the next frame immediately. A test calls it in a loop: a
  fake clock that runs as fast as the CPU allows and never sleeps.

Subscribers each get a bounded queue. One that falls behind loses its oldest frames (counted in
``dropped``); the studio never waits for anyone.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from onair.clock import Clock, SystemClock
from onair.studio.deck import DeckEvent, DeckTrack, MusicDeck
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame, Samples
from onair.studio.mixer import ALL_ON_AIR, Mixer, Routing
from onair.studio.voice import VoiceInput

__all__ = ["LATENESS_BUCKETS", "FrameSubscription", "Studio", "StudioStats", "SubscriptionClosed"]

logger = logging.getLogger(__name__)

FRAME_S: Final = FRAME_SAMPLES / SAMPLE_RATE
DEFAULT_SUBSCRIPTION_FRAMES: Final = 50  # one second of program
LATENESS_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
"""Upper bounds (seconds) of the frame lateness histogram; a frame over 20 ms late is late."""


class SubscriptionClosed(Exception):
    """The studio closed, or the subscription was cancelled."""


class FrameSubscription:
    """A bounded queue of frames for one consumer; full means the oldest frame is dropped.

    After ``close`` the frames still queued can be read; then ``get`` raises
    ``SubscriptionClosed`` and ``async for`` ends.
    """

    def __init__(self, maxsize: int, voice_id: str | None = None) -> None:
        if maxsize < 1:
            raise ValueError("a subscription holds at least one frame")
        self.maxsize = maxsize
        self.voice_id = voice_id  # None: the program; else that voice's mix-minus return
        self.dropped = 0
        self._frames: deque[ProgramFrame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return len(self._frames)

    def offer(self, frame: ProgramFrame) -> None:
        """Called by the studio; never blocks."""
        if self._closed:
            return
        if len(self._frames) >= self.maxsize:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._wake()

    def get_nowait(self) -> ProgramFrame:
        if self._frames:
            return self._frames.popleft()
        if self._closed:
            raise SubscriptionClosed
        raise asyncio.QueueEmpty

    async def get(self) -> ProgramFrame:
        while not self._frames:
            if self._closed:
                raise SubscriptionClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def __aiter__(self) -> FrameSubscription:
        return self

    async def __anext__(self) -> ProgramFrame:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


@dataclass
class StudioStats:
    frames: int = 0
    late_frames: int = 0  # frames rendered more than one frame period after they were due
    max_lateness_s: float = 0.0
    lateness_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENESS_BUCKETS) + 1))
    """Frames of the real-time driver by how late they ran: `lateness_counts[i]` is the number
    at most `LATENESS_BUCKETS[i]` late (and above the bound before); the last, the rest."""
    lateness_sum_s: float = 0.0


class Studio:
    """The program of one live show."""

    def __init__(
        self,
        clock_start_wallclock: float | None = None,
        crossfade_s: float = 3.0,
        target_lufs: float = -16.0,
        on_event: Callable[[DeckEvent], None] | None = None,
        *,
        on_need_track: Callable[[], DeckTrack | None] | None = None,
        mixer: Mixer | None = None,
        clock: Clock | None = None,
        decode_in_background: bool = True,
    ) -> None:
        self._clock = clock or SystemClock()
        self._start_wallclock = clock_start_wallclock
        self.mixer = mixer or Mixer()
        # Deck events are stamped where they are heard in the program, after the limiter.
        self.deck = MusicDeck(
            crossfade_s=crossfade_s,
            target_lufs=target_lufs,
            on_event=on_event,
            on_need_track=on_need_track,
            event_latency=self.mixer.latency,
            decode_in_background=decode_in_background,
        )
        self.stats = StudioStats()
        self._voices: dict[str, VoiceInput] = {}
        self.routing: Routing = ALL_ON_AIR
        """Which connected voices are on air and who hears whom off air (the stage sets it)."""
        self._subscriptions: list[FrameSubscription] = []
        self._pts = 0
        self._last: ProgramFrame | None = None
        self._returns: dict[str, ProgramFrame] = {}
        self._stopping = False
        self._running = False

    # -- voices ---------------------------------------------------------------------------

    def add_voice(self, voice_id: str) -> VoiceInput:
        """The voice's input, created on first use; a voice that rejoins gets the same one."""
        voice = self._voices.get(voice_id)
        if voice is None:
            voice = self._voices[voice_id] = VoiceInput(voice_id)
        voice.connect()
        return voice

    def remove_voice(self, voice_id: str) -> None:
        voice = self._voices.pop(voice_id, None)
        if voice is not None:
            voice.disconnect()

    def voice(self, voice_id: str) -> VoiceInput:
        return self._voices[voice_id]

    @property
    def voices(self) -> dict[str, VoiceInput]:
        return dict(self._voices)

    # -- the program ----------------------------------------------------------------------

    @property
    def pts(self) -> int:
        """Program sample index of the next frame."""
        return self._pts

    def wallclock_at(self, pts: int) -> float:
        """Unix time at which program sample ``pts`` is heard (the schedule, not the loop)."""
        return self._wallclock_origin() + pts / SAMPLE_RATE

    def render_frame(self) -> ProgramFrame:
        """Render the next 20 ms of program and the returns, and hand them to subscribers."""
        pts = self._pts
        origin = self._start_wallclock
        wallclock = (self._wallclock_origin() if origin is None else origin) + pts / SAMPLE_RATE
        music = self.deck.next_frame()
        voices: dict[str, Samples] = {
            voice_id: voice.pull() for voice_id, voice in self._voices.items() if voice.active
        }
        program = self.mixer.mix(music, voices, self.routing)
        frame = ProgramFrame(pts, wallclock, program)
        self._last = frame
        mixminus = self.mixer.mixminus
        self._returns = {
            voice_id: ProgramFrame(pts, wallclock, mixminus(voice_id)) for voice_id in voices
        }
        self._pts = pts + FRAME_SAMPLES
        self.stats.frames += 1
        for subscription in self._subscriptions:
            if subscription.voice_id is None:
                subscription.offer(frame)
            else:
                subscription.offer(self._returns.get(subscription.voice_id, frame))
        return frame

    def mixminus(self, voice_id: str) -> ProgramFrame:
        """The last rendered frame's return for ``voice_id``: the program without that voice."""
        if self._last is None:
            raise LookupError("no frame has been rendered yet")
        return self._returns.get(voice_id, self._last)

    def subscribe(
        self, maxsize: int = DEFAULT_SUBSCRIPTION_FRAMES, voice_id: str | None = None
    ) -> FrameSubscription:
        """Frames from the next one on: the program, or ``voice_id``'s mix-minus return."""
        subscription = FrameSubscription(maxsize, voice_id)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: FrameSubscription) -> None:
        subscription.close()
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    @contextlib.contextmanager
    def subscription(
        self, maxsize: int = DEFAULT_SUBSCRIPTION_FRAMES, voice_id: str | None = None
    ) -> Iterator[FrameSubscription]:
        subscription = self.subscribe(maxsize, voice_id)
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)

    # -- the real-time driver -------------------------------------------------------------

    async def run(self, sink: Callable[[ProgramFrame], object] | None = None) -> None:
        """Render a frame every 20 ms until ``stop()`` or cancellation.

        ``sink``, if given, is called with each frame right after it is rendered, on the
        event loop: it must be quick (hand heavy work such as encoding to a thread).
        """
        if self._running:
            raise RuntimeError("the studio is already running")
        self._running = True
        try:
            await self._run(sink)
        finally:
            self._running = False

    async def _run(self, sink: Callable[[ProgramFrame], object] | None) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = False
        origin = loop.time()
        first = self.stats.frames
        if self._start_wallclock is None:
            self._start_wallclock = self._clock.now().timestamp() - self._pts / SAMPLE_RATE
        while not self._stopping:
            due = origin + (self.stats.frames - first) * FRAME_S
            # When catching up this is sleep(0): the rest of the loop still runs between frames.
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self._stopping:
                break
            self._count_lateness(loop.time() - due)
            frame = self.render_frame()
            if sink is not None:
                sink(frame)

    def stop(self) -> None:
        """Ask ``run`` to return after the frame in progress."""
        self._stopping = True

    def close(self) -> None:
        """End the show's program: stop the decoder, release files, close subscriptions."""
        self._stopping = True
        self.deck.close()
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()

    def _count_lateness(self, lateness: float) -> None:
        # Once per frame: a C bisect and two plain adds, read by /metrics when it is scraped.
        stats = self.stats
        lateness = max(0.0, lateness)
        stats.lateness_counts[bisect.bisect_left(LATENESS_BUCKETS, lateness)] += 1
        stats.lateness_sum_s += lateness
        stats.max_lateness_s = max(stats.max_lateness_s, lateness)
        if lateness > FRAME_S:
            stats.late_frames += 1

    def _wallclock_origin(self) -> float:
        if self._start_wallclock is None:
            self._start_wallclock = self._clock.now().timestamp()
        return self._start_wallclock
