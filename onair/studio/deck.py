"""The music deck: plays the show's queue in full, crossfaded and loudness-normalised.

Decoding happens ahead of playback, off the frame path: each track on air (and the next one,
opened before it is needed) has a bounded ring of decoded 48 kHz stereo samples that a decoder
fills, by default in one background thread per deck. ``MusicDeck.next_frame`` only copies from
those rings, so the 20 ms frame path never waits on the disk or on FFmpeg; if a ring is ever
short it plays silence for the missing part and counts an underrun rather than blocking. A ring
is topped up in batches (``REFILL_S`` at a time, once it has drained that far), not a chunk per
frame: FFmpeg's decoder then runs in bursts, with its tables in cache, instead of a little in
every frame between the encoders' work.

Segues follow radio-automation practice: when the decoder reaches the end of the song on air
(the ring holds more than the crossfade, so the exact end is known before the segue starts), the
deck schedules an equal-power crossfade over the song's last ``crossfade_s`` seconds into the next
one, which was opened and pre-decoded while the first one played. A skip is the same segue made
short (``SKIP_FADE_S``) and started at once.

Events carry the program ``pts`` (sample index) at which a thing is heard, so now-playing titles,
ICY metadata and the play log change with the audio, not with the decoder running ahead.

All public methods take the deck's lock, so controls may come from another thread than the one
calling ``next_frame``; they take effect at the next frame boundary.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import av
import numpy as np
import numpy.typing as npt

from onair.studio.crossfade import fade_in_gain, fade_out_gain
from onair.studio.frames import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, Samples
from onair.studio.livesource import LiveSource
from onair.studio.ring import Plane, SampleRing

__all__ = [
    "DeckEvent",
    "DeckTrack",
    "LiveEnded",
    "LiveStarted",
    "LiveTitle",
    "MusicDeck",
    "QueueEmpty",
    "TrackEnded",
    "TrackFailed",
    "TrackStarted",
    "loudness_gain_db",
]

logger = logging.getLogger(__name__)

DEFAULT_CROSSFADE_S: Final = 3.0
MAX_CROSSFADE_S: Final = 15.0
DEFAULT_TARGET_LUFS: Final = -16.0
# A quiet master is lifted at most this much, so a near-silent intro or a mis-measured track does
# not come out as amplified hiss; a hot master is cut at most this much.
MIN_TRACK_GAIN_DB: Final = -20.0
MAX_TRACK_GAIN_DB: Final = 12.0
SKIP_FADE_S: Final = 0.1
# Decoded audio held beyond the crossfade, so the decoder meets the end of a song (and the deck
# learns its exact length) before the segue has to start, with slack for a slow disk.
DECODE_AHEAD_S: Final = 2.0
# How much of the next song is pre-decoded before it goes on air: enough to start a segue or a
# skip at once, small enough that a queue reshuffle throws little work away.
PREPARE_S: Final = 1.0
# A song on air is decoded in batches: its ring is topped up only once it has drained this far
# below its target, and then to the target in one go. Most frames then do no decoding work at
# all (one comparison), and a batch of some 20 MP3 frames pays for the step once.
REFILL_S: Final = 0.5
# One decoding step stops after this many decoded chunks, so a background decoder serving several
# songs goes round all of them (the next song's pre-decode is never starved by a long top-up).
MAX_CHUNKS_PER_STEP: Final = 32
# The auto-DJ is asked this long before the segue would start, leaving time to open and
# pre-decode its pick; a "nothing yet" answer is retried after AUTO_DJ_RETRY_S.
AUTO_DJ_LEAD_S: Final = 10.0
AUTO_DJ_RETRY_S: Final = 1.0
# The fader glides to a new setting with this time constant: a hand on a fader, not a switch,
# and no zipper noise when a UI slider sends a burst of values.
FADER_SMOOTHING_S: Final = 0.05
MAX_FADER_GAIN: Final = 2.0
_DECODER_POLL_S: Final = 0.05
# A live source (DJ software) takes over from the songs on air with a crossfade this long.
LIVE_FADE_S: Final = 0.5
# A live source whose buffer falls below this while its stream still runs has stopped sending:
# the deck segues out of what is left into the next song rather than play a gap.
LIVE_LOW_WATER_S: Final = 0.04


@dataclass(frozen=True)
class DeckTrack:
    """One song as the deck needs it; the app builds these from the show's queue."""

    queue_item_id: int | None  # None for an auto-DJ pick, which is not in the show's queue
    track_id: int
    path: Path
    title: str
    artists: tuple[str, ...]
    loudness_lufs: float | None  # integrated loudness measured at import; None if unknown
    duration_s: float
    start_s: float = 0.0
    """Where in the song to start: a studio resuming a show on another node (onair/cluster)
    starts the song on air where the stopped one left it."""


@dataclass(frozen=True)
class TrackStarted:
    track: DeckTrack
    pts: int  # first program sample at which the song is heard (the start of its fade-in)
    auto_dj: bool = False


@dataclass(frozen=True)
class TrackEnded:
    track: DeckTrack
    pts: int  # program sample just after the song's last audible sample
    seconds_played: float
    skipped: bool


@dataclass(frozen=True)
class TrackFailed:
    track: DeckTrack
    reason: str


@dataclass(frozen=True)
class QueueEmpty:
    """The queue ran dry and the deck turned to the auto-DJ; sent once per dry spell."""

    pts: int


@dataclass(frozen=True)
class LiveStarted:
    """A live source (DJ software) is heard from ``pts`` on."""

    source: LiveSource
    pts: int


@dataclass(frozen=True)
class LiveTitle:
    """The live source's now-playing title, heard from ``pts`` on."""

    source: LiveSource
    title: str
    pts: int


@dataclass(frozen=True)
class LiveEnded:
    """The live source is off air: its stream ended, ran dry, or the crew took it off."""

    source: LiveSource
    pts: int
    reason: str
    heard: bool
    """False when it ended before it ever went on air."""


DeckEvent = (
    TrackStarted | TrackEnded | TrackFailed | QueueEmpty | LiveStarted | LiveTitle | LiveEnded
)


def loudness_gain_db(
    loudness_lufs: float | None,
    target_lufs: float = DEFAULT_TARGET_LUFS,
) -> float:
    """The gain that brings a track measured at ``loudness_lufs`` to ``target_lufs``.

    Unknown or unmeasurable loudness (None, silence's -inf, NaN) plays as mastered.
    """
    if loudness_lufs is None or not math.isfinite(loudness_lufs):
        return 0.0
    return min(MAX_TRACK_GAIN_DB, max(MIN_TRACK_GAIN_DB, target_lufs - loudness_lufs))


class _TrackReader:
    """Decodes one track into its ring; every method but ``read_into`` runs on the decoder."""

    def __init__(self, track: DeckTrack, capacity: int, fill_target: int, gain: float) -> None:
        self.track = track
        self.ring = SampleRing(capacity)
        # The track's loudness gain, applied as decoded samples go into the ring: once per
        # sample in the decoder's batch rather than on the frame path.
        self.gain = gain
        self._capacity = capacity
        # Plain attributes shared with the frame path: each is written by one side only and a
        # stale read merely delays a decision by a frame.
        self.fill_target = fill_target
        self.opened = False
        self.finished = False  # no more samples will arrive (end of file or failure)
        self.failure: str | None = None
        self.total = 0  # samples handed to the ring so far; the track's length once finished
        self.cancelled = False
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._resampler: Any = None
        self._pending: list[Plane] | None = None
        self._flushed = False
        self._refilling = True  # topping the ring up to its target; see REFILL_S
        self._refill_below = fill_target - _seconds_to_samples(REFILL_S)
        self._discard: int | None = 0 if track.start_s <= 0 else None
        """Samples still to drop before `track.start_s` (None: not known until the first
        frame after the seek says where it landed)."""

    def go_on_air(self) -> None:
        self.fill_target = self._capacity
        self._refill_below = self._capacity - _seconds_to_samples(REFILL_S)
        self._refilling = True

    @property
    def ready(self) -> bool:
        """Opened and holding enough audio to start without a gap."""
        return (
            self.opened
            and self.failure is None
            and (self.ring.count >= FRAME_SAMPLES or self.finished)
        )

    def read_into(self, out: Samples) -> int:
        return self.ring.read_into(out)

    def fill_step(self) -> bool:
        """Do one unit of decoding work; False when there is nothing to do right now.

        A unit is a batch: once the ring has drained ``REFILL_S`` below its target, chunks are
        decoded and written until it is back at the target (or ``MAX_CHUNKS_PER_STEP``)."""
        if self.cancelled or self.finished:
            return False
        if not self.opened:
            self._open()
            return True
        ring = self.ring
        if not self._refilling:
            if ring.count > self._refill_below:
                return False
            self._refilling = True
        target = self.fill_target
        for _ in range(MAX_CHUNKS_PER_STEP):
            if ring.count >= target:
                self._refilling = False
                break
            pending = self._pending
            if pending is None:
                pending = self._decode_next()
                if pending is None:
                    break
            taken = ring.write(pending, self.gain)
            self.total += taken
            self._pending = [row[taken:] for row in pending] if len(pending[0]) > taken else None
        return True

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._frames = None

    def _open(self) -> None:
        try:
            container = av.open(str(self.track.path))
        # As for decoding: any failure to open is this track's problem, not the show's.
        except Exception as exc:
            self._fail(f"cannot open: {exc}")
            return
        if not container.streams.audio:
            container.close()
            self._fail("no audio stream")
            return
        self._container = container
        stream = container.streams.audio[0]
        if self.track.start_s > 0 and stream.time_base is not None:
            # Lands on a frame at or before the position; the rest is dropped as decoded.
            try:
                container.seek(int(self.track.start_s / stream.time_base), stream=stream)
            except Exception:  # an unseekable file is decoded from its top and dropped
                container.seek(0)
        self._frames = iter(container.decode(stream))
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        self.opened = True

    def _decode_next(self) -> list[Plane] | None:
        """The next decoded chunk (one row per channel), or None when this step made none."""
        assert self._frames is not None
        if self._flushed:
            self._finish()
            return None
        try:
            try:
                frame = next(self._frames)
            except StopIteration:
                self._flushed = True
                return _join(self._resampler.resample(None))
            if self._discard is None:
                known = frame.pts is not None and frame.time_base is not None
                at = float(frame.pts * frame.time_base) if known else 0.0
                self._discard = max(0, round((self.track.start_s - at) * SAMPLE_RATE))
            planes: list[Plane] | None
            if _is_planar_stereo_48k(frame):
                planes = _planes(frame)  # most MP3s: no resampling, no copy until the ring
            else:
                planes = _join(self._resampler.resample(frame))
            return self._trimmed(planes)
        # One bad file must never stop the show: whatever FFmpeg or the resampler raises, the
        # track ends where its decodable audio ends and the deck moves on.
        except Exception as exc:
            self._fail(f"decode error after {self.total / SAMPLE_RATE:.1f} s: {exc}")
            return None

    def _trimmed(self, planes: list[Plane] | None) -> list[Plane] | None:
        """Drops what comes before the track's `start_s` (None when all of a chunk goes: the
        next step decodes on)."""
        if planes is None or not self._discard:
            return planes
        drop = min(self._discard, len(planes[0]))
        self._discard -= drop
        rest = [row[drop:] for row in planes]
        return rest if len(rest[0]) else None

    def _finish(self) -> None:
        self.close()
        if self.total == 0:
            self._fail("no decodable audio")
            return
        self.finished = True

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.close()
        self.finished = True


def _is_planar_stereo_48k(frame: Any) -> bool:
    # Asked of every decoded frame: `layout.nb_channels` is a plain int, where
    # `len(layout.channels)` builds a tuple of channel objects each time (2-3 µs).
    return bool(
        frame.format.name == "fltp"
        and frame.sample_rate == SAMPLE_RATE
        and frame.layout.nb_channels == CHANNELS
    )


def _planes(frame: Any) -> list[Plane]:
    """A planar float frame's channels as arrays over FFmpeg's own buffers (no copy)."""
    n = frame.samples
    return [np.frombuffer(plane, dtype=np.float32, count=n) for plane in frame.planes[:CHANNELS]]


def _join(frames: Sequence[Any]) -> list[Plane] | None:
    chunks = [_planes(f) for f in frames if f.samples]
    if not chunks:
        return None
    if len(chunks) == 1:
        return chunks[0]
    return [np.concatenate([c[channel] for c in chunks]) for channel in range(CHANNELS)]


class _Decoder(Protocol):
    def add(self, reader: _TrackReader) -> None: ...

    def discard(self, reader: _TrackReader) -> None: ...

    def service(self) -> None:
        """Called at every frame boundary on the frame path."""

    def close(self) -> None: ...


class _BackgroundDecoder:
    """One thread per deck, round-robin over its readers, so a deck costs one thread however
    many songs are on air or prepared."""

    def __init__(self) -> None:
        self._readers: list[_TrackReader] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, reader: _TrackReader) -> None:
        with self._lock:
            self._readers.append(reader)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="onair-deck-decoder", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def discard(self, reader: _TrackReader) -> None:
        # The container belongs to the decoder thread, which closes it on its next pass.
        reader.cancelled = True
        self._wake.set()

    def service(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            self._wake.clear()
            with self._lock:
                if self._stopping:
                    break
                readers = list(self._readers)
            worked = False
            for reader in readers:
                if reader.cancelled:
                    reader.close()
                    with self._lock:
                        self._readers.remove(reader)
                    continue
                worked = reader.fill_step() or worked
            if not worked:
                self._wake.wait(_DECODER_POLL_S)
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()


class _InlineDecoder:
    """Decodes on the frame path, before each frame: deterministic, for tests and offline
    rendering that run faster than real time; never for a live show."""

    def __init__(self) -> None:
        self._readers: list[_TrackReader] = []

    def add(self, reader: _TrackReader) -> None:
        # Opened and pre-decoded at once, so a song queued before a frame can start in it.
        self._readers.append(reader)
        while reader.fill_step():
            pass

    def discard(self, reader: _TrackReader) -> None:
        reader.cancelled = True
        reader.close()
        if reader in self._readers:
            self._readers.remove(reader)

    def service(self) -> None:
        for reader in self._readers:
            while reader.fill_step():
                pass

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()


@dataclass
class _Prepared:
    reader: _TrackReader
    auto_dj: bool


class _Player:
    """A song on air: its reader (which applies its loudness gain) and its fades, in the song's
    own samples.

    Fades are placed by position in the song rather than by program time, so a pause freezes a
    segue halfway and resuming continues it.
    """

    def __init__(self, reader: _TrackReader | LiveSource, auto_dj: bool) -> None:
        self.reader = reader
        # A live source is no song of the catalog: it has a player but no track.
        self.track = reader.track if isinstance(reader, _TrackReader) else None
        self.live = reader if isinstance(reader, LiveSource) else None
        self.auto_dj = auto_dj
        self.position = 0
        self.delay = 0  # program samples still to pass before the first sample is heard
        self.fade_in_len = 0
        self.fade_out_at: int | None = None
        self.fade_out_len = 0
        self.fade_out_scale = 1.0
        self.end_at: int | None = None  # position at which the fade-out ends
        self.started = False
        self.successor_scheduled = False
        self.skipped = False
        self.failure_reported = False
        self.ended_pts: int | None = None

    def envelope(self, positions: npt.NDArray[np.int64]) -> Samples:
        gains: Samples | None = None
        if self.fade_in_len and int(positions[0]) < self.fade_in_len:
            gains = fade_in_gain(positions, 0, self.fade_in_len)
        if self.fade_out_at is not None and int(positions[-1]) >= self.fade_out_at:
            fading = fade_out_gain(positions, self.fade_out_at, self.fade_out_len)
            fading *= self.fade_out_scale
            if gains is None:
                return fading
            gains *= fading
        if gains is None:
            return np.ones(positions.shape[0], dtype=np.float32)
        return gains

    def fade_out_now(self, length: int) -> None:
        """Fade out over ``length`` samples from here, starting from the current gain."""
        current = float(self.envelope(np.array([self.position], dtype=np.int64))[0])
        if self.end_at is not None:
            length = min(length, self.end_at - self.position)
        self.fade_out_scale = current
        self.fade_out_at = self.position
        self.fade_out_len = length
        self.end_at = self.position + length
        self.successor_scheduled = True

    def remaining_estimate(self) -> float:
        """Samples left to play: exact once decoded to the end, else from the catalog; a live
        source may end at any moment, so only what it has buffered counts."""
        if self.live is not None:
            return float(self.live.ring.count)
        if self.reader.finished:
            return float(self.reader.total - self.position)
        if self.track is not None and self.track.duration_s > 0:
            return (self.track.duration_s - self.track.start_s) * SAMPLE_RATE - self.position
        return math.inf


class MusicDeck:
    """Plays a queue of ``DeckTrack`` and hands out one 20 ms frame of music at a time.

    ``on_event`` receives ``TrackStarted``, ``TrackEnded``, ``TrackFailed`` and ``QueueEmpty``
    from inside ``next_frame``. ``on_need_track`` is the auto-DJ: asked, when the queue is dry
    and the song on air nears its end, for one more song; it must answer at once (return None
    when it has nothing ready; it is asked again a second later). ``event_latency`` is added to
    every event's pts: the delay between the deck and the program (the limiter's look-ahead).

    ``decode_in_background=False`` decodes on the calling thread before each frame, which makes
    a faster-than-real-time test deterministic; a live show keeps the default.
    """

    def __init__(
        self,
        *,
        crossfade_s: float = DEFAULT_CROSSFADE_S,
        target_lufs: float = DEFAULT_TARGET_LUFS,
        on_event: Callable[[DeckEvent], None] | None = None,
        on_need_track: Callable[[], DeckTrack | None] | None = None,
        start_pts: int = 0,
        event_latency: int = 0,
        decode_in_background: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        self._crossfade = _seconds_to_samples(_clamp_crossfade(crossfade_s))
        self._target_lufs = target_lufs
        self._on_event = on_event
        self._on_need_track = on_need_track
        self._pts = start_pts
        self._event_latency = event_latency
        self._decoder: _Decoder = _BackgroundDecoder() if decode_in_background else _InlineDecoder()
        self._upcoming: list[DeckTrack] = []
        self._prepared: _Prepared | None = None
        self._players: list[_Player] = []
        self._live_pending: LiveSource | None = None
        self._playing = False
        self._skips = 0
        self._dry_reported = False
        self._next_auto_dj_pts = start_pts
        self._underruns = 0
        self._unplayable: dict[Path, str] = {}  # files that gave no audio at all, and why
        self._failed_items: set[tuple[int | None, Path]] = set()  # TrackFailed already sent
        self._transport = 0.0  # 1 while playing, 0 while paused; ramped over one frame
        self._fader = 1.0
        self._fader_target = 1.0
        self._fader_coef = math.exp(-FRAME_SAMPLES / (FADER_SMOOTHING_S * SAMPLE_RATE))
        self._scratch: Samples = np.zeros((CHANNELS, FRAME_SAMPLES), dtype=np.float32)
        self._offsets = np.arange(FRAME_SAMPLES, dtype=np.int64)
        self._ramp = (np.arange(1, FRAME_SAMPLES + 1) / FRAME_SAMPLES).astype(np.float32)
        self._closed = False

    # -- controls -------------------------------------------------------------------------

    def play(self) -> None:
        with self._lock:
            self._playing = True

    def pause(self) -> None:
        """Fade to silence within one frame and hold the position until ``play``."""
        with self._lock:
            self._playing = False

    def skip(self) -> None:
        """End the song on air with a short fade and segue into the next one."""
        with self._lock:
            self._skips += 1

    def go_live(self, source: LiveSource) -> None:
        """Put a live source on air once it has buffered enough: the songs on air fade out
        under it, and the queue waits, its next song prepared, until the source ends."""
        with self._lock:
            if self._closed:
                source.take_off_air("the show has ended")
                return
            pending = self._live_pending
            self._live_pending = source
        if pending is not None and pending is not source:
            pending.take_off_air("replaced by another source")

    @property
    def live(self) -> LiveSource | None:
        """The live source on air, or waiting to go on air."""
        for player in reversed(self._players):
            if player.live is not None and not player.skipped:
                return player.live
        return self._live_pending

    def set_queue(self, tracks: Iterable[DeckTrack]) -> None:
        """Replace the upcoming songs (those after the one on air), in play order."""
        with self._lock:
            self._upcoming = list(tracks)
            self._after_queue_change()

    def append(self, *tracks: DeckTrack) -> None:
        with self._lock:
            self._upcoming.extend(tracks)
            self._after_queue_change()

    def set_crossfade(self, seconds: float) -> None:
        """Segue length for the next crossfade (0 cuts); clamped to 0..MAX_CROSSFADE_S."""
        with self._lock:
            self._crossfade = _seconds_to_samples(_clamp_crossfade(seconds))

    def set_level(self, gain: float) -> None:
        """Music fader as a linear gain (1.0 = as normalised), glided to avoid zipper noise."""
        with self._lock:
            self._fader_target = min(MAX_FADER_GAIN, max(0.0, gain))

    def set_level_db(self, db: float) -> None:
        self.set_level(0.0 if db == -math.inf else 10.0 ** (db / 20.0))

    def close(self) -> None:
        """Stop the decoder and release every open file."""
        with self._lock:
            self._closed = True
            sources = [p.live for p in self._players if p.live is not None]
            if self._live_pending is not None:
                sources.append(self._live_pending)
            self._live_pending = None
            self._players.clear()
            self._prepared = None
            self._decoder.close()
        for source in sources:
            source.take_off_air("the show has ended")

    # -- state ----------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def pts(self) -> int:
        """Deck sample index of the next frame."""
        return self._pts

    @property
    def crossfade_s(self) -> float:
        return self._crossfade / SAMPLE_RATE

    @property
    def level(self) -> float:
        return self._fader_target

    @property
    def level_db(self) -> float:
        return -math.inf if self._fader_target == 0.0 else 20.0 * math.log10(self._fader_target)

    @property
    def upcoming(self) -> tuple[DeckTrack, ...]:
        return tuple(self._upcoming)

    @property
    def now_playing(self) -> DeckTrack | None:
        """The latest song heard that is not being skipped away."""
        for player in reversed(self._players):
            if player.started and not player.skipped:
                return player.track  # None while a live source is on air
        return None

    @property
    def position_s(self) -> float:
        """Where the song on air is, from its top (a resumed song counts from its top too)."""
        for player in reversed(self._players):
            if player.started and not player.skipped:
                start = player.track.start_s if player.track is not None else 0.0
                return start + player.position / SAMPLE_RATE
        return 0.0

    @property
    def underruns(self) -> int:
        """Frames in which a song on air had less decoded audio than it needed."""
        return self._underruns

    # -- the frame path -------------------------------------------------------------------

    def next_frame(self) -> Samples:
        """The next 20 ms of music, shape (2, FRAME_SAMPLES); never waits on the decoder."""
        with self._lock:
            out: Samples = np.zeros((CHANNELS, FRAME_SAMPLES), dtype=np.float32)
            if self._closed:
                self._pts += FRAME_SAMPLES
                return out
            self._decoder.service()
            self._at_frame_boundary()
            transport_target = 1.0 if self._playing else 0.0
            if self._transport == 0.0 and transport_target == 0.0:
                self._pts += FRAME_SAMPLES
                return out
            first = True
            ended = False
            for player in self._players:
                ended = self._render(player, out, first) or ended
                first = False
            if self._fader == self._fader_target and self._transport == transport_target:
                # Fader at rest and no play/pause ramp: one constant gain, usually 1.
                if self._fader * self._transport != 1.0:
                    out *= self._fader * self._transport
            else:
                self._apply_master_gain(out, transport_target)
            if ended:
                self._retire_ended()
            self._pts += FRAME_SAMPLES
            return out

    def _render(self, player: _Player, out: Samples, first: bool) -> bool:
        """Add ``player``'s next samples into ``out``; True when the song has ended. The
        ``first`` player of a frame finds ``out`` silent, so its samples are read straight into
        it and faded there."""
        reader = player.reader
        if player.live is not None and player.end_at is None:
            player.live.trim()
        skip = 0
        if player.delay:
            skip = min(player.delay, FRAME_SAMPLES)
            player.delay -= skip
        wanted = FRAME_SAMPLES - skip
        if player.end_at is not None:
            wanted = min(wanted, player.end_at - player.position)
        got = 0
        if wanted > 0:
            if first:
                view = out if wanted == FRAME_SAMPLES else out[:, skip : skip + wanted]
            else:
                view = self._scratch[:, :wanted]
            live = player.live
            if live is not None and player.end_at is None:
                got = live.read_paced(view)  # follows the sender's clock
            else:
                got = reader.ring.read_into(view)
            if got < wanted and not reader.finished:
                self._underruns += 1
        if got > 0:
            if not player.started:
                player.started = True
                if player.track is not None:
                    self._emit(TrackStarted(player.track, self._heard(skip), player.auto_dj))
                elif player.live is not None:
                    self._emit(LiveStarted(player.live, self._heard(skip)))
            if player.live is not None and (title := player.live.title_due()) is not None:
                self._emit(LiveTitle(player.live, title, self._heard(skip)))
            samples = view if got == wanted else view[:, :got]
            position = player.position
            if (player.fade_in_len and position < player.fade_in_len) or (
                player.fade_out_at is not None and position + got > player.fade_out_at
            ):
                gains = player.envelope(player.position + self._offsets[:got])
                if first:
                    samples *= gains
                else:
                    out[:, skip : skip + got] += samples * gains
            elif not first:
                out[:, skip : skip + got] += samples
            player.position += got
        at_end = player.end_at is not None and player.position >= player.end_at
        if player.started and (at_end or (reader.finished and reader.ring.count == 0)):
            player.ended_pts = self._heard(skip + got)
            return True
        return False

    def _apply_master_gain(self, out: Samples, transport_target: float) -> None:
        fader_next = self._fader_target + (self._fader - self._fader_target) * self._fader_coef
        if abs(fader_next - self._fader_target) < 1e-4:
            fader_next = self._fader_target
        start = self._fader * self._transport
        end = fader_next * transport_target
        self._fader, self._transport = fader_next, transport_target
        if start == end:
            if start != 1.0:
                out *= start
            return
        out *= start + (end - start) * self._ramp

    def _retire_ended(self) -> None:
        for player in [p for p in self._players if p.ended_pts is not None]:
            assert player.ended_pts is not None
            self._players.remove(player)
            if isinstance(player.reader, LiveSource):
                source = player.reader
                source.take_off_air("taken off air")
                reason = source.end_reason or "ended"
                self._emit(LiveEnded(source, player.ended_pts, reason, heard=player.started))
                continue
            self._decoder.discard(player.reader)
            assert player.track is not None
            self._emit(
                TrackEnded(
                    player.track,
                    player.ended_pts,
                    player.position / SAMPLE_RATE,
                    player.skipped,
                )
            )

    # -- decisions at frame boundaries ----------------------------------------------------

    def _at_frame_boundary(self) -> None:
        self._report_failures()
        if self._prepared is None and self._upcoming:
            self._ensure_prepared()
        silent = not self._playing and self._transport == 0.0
        if self._skips:
            self._skips = 0
            self._cut_now() if silent else self._skip_now()
        if not self._playing:
            return
        if self._live_pending is not None:
            self._take_live_if_ready(self._live_pending)
        if not self._players:
            self._start_prepared(delay=0, fade_in=0)
        self._watch_live()
        self._schedule_segue()
        if self._prepared is None and not self._upcoming and self._pts >= self._next_auto_dj_pts:
            self._ask_auto_dj_if_due()

    def _report_failures(self) -> None:
        prepared = self._prepared
        if prepared is not None and prepared.reader.failure is not None:
            self._prepared = None
            self._decoder.discard(prepared.reader)
            if (
                not prepared.auto_dj
                and self._upcoming
                and self._upcoming[0] == prepared.reader.track
            ):
                self._upcoming.pop(0)
            if prepared.reader.total == 0:
                self._unplayable[prepared.reader.track.path] = prepared.reader.failure
            self._failed_items.add(_item_key(prepared.reader.track))
            self._report_failure(prepared.reader)
        for player in self._players:
            reader = player.reader
            if isinstance(reader, _TrackReader) and reader.failure and not player.failure_reported:
                player.failure_reported = True
                self._report_failure(reader)

    def _report_failure(self, reader: _TrackReader) -> None:
        reason = reader.failure or "unknown"
        logger.warning(
            "deck skipped track %s (%s): %s",
            reader.track.track_id,
            reader.track.path,
            reason,
            extra={
                "track_id": reader.track.track_id,
                "path": str(reader.track.path),
                "reason": reason,
            },
        )
        self._emit(TrackFailed(reader.track, reason))

    def _ensure_prepared(self) -> None:
        while self._prepared is None and self._upcoming:
            track = self._upcoming[0]
            if track.path not in self._unplayable:
                self._prepared = _Prepared(self._open(track), auto_dj=False)
                return
            # This show already found the file unplayable: reading it again would fail again,
            # and an app that re-sends its queue after a TrackFailed must not start a loop.
            self._upcoming.pop(0)
            self._report_known_failure(track)

    def _report_known_failure(self, track: DeckTrack) -> None:
        if _item_key(track) in self._failed_items:
            return
        self._failed_items.add(_item_key(track))
        self._emit(TrackFailed(track, self._unplayable[track.path]))

    def _open(self, track: DeckTrack) -> _TrackReader:
        # A top-up starts REFILL_S below the target, so a ring never holds less than the
        # crossfade plus DECODE_AHEAD_S at a frame boundary.
        capacity = self._crossfade + _seconds_to_samples(DECODE_AHEAD_S + REFILL_S)
        gain = 10.0 ** (loudness_gain_db(track.loudness_lufs, self._target_lufs) / 20)
        reader = _TrackReader(track, capacity, _seconds_to_samples(PREPARE_S), gain)
        self._decoder.add(reader)
        return reader

    def _after_queue_change(self) -> None:
        if self._upcoming:
            self._dry_reported = False
        prepared = self._prepared
        if prepared is None:
            return
        still_next = (
            not prepared.auto_dj
            and bool(self._upcoming)
            and self._upcoming[0] == prepared.reader.track
        )
        # The show's own queue outranks an auto-DJ pick that has not gone on air yet.
        keep_auto = prepared.auto_dj and not self._upcoming
        if not (still_next or keep_auto):
            self._decoder.discard(prepared.reader)
            self._prepared = None

    def _take_prepared(self) -> _Player | None:
        prepared = self._prepared
        if prepared is None or not prepared.reader.ready:
            return None
        self._prepared = None
        if not prepared.auto_dj:
            self._upcoming.pop(0)
        prepared.reader.go_on_air()
        player = _Player(prepared.reader, prepared.auto_dj)
        self._players.append(player)
        self._ensure_prepared()
        return player

    def _start_prepared(self, delay: int, fade_in: int) -> _Player | None:
        player = self._take_prepared()
        if player is not None:
            player.delay = delay
            player.fade_in_len = fade_in
        return player

    def _lead(self) -> _Player | None:
        return self._players[-1] if self._players else None

    def _take_live_if_ready(self, source: LiveSource) -> None:
        if not source.ready:
            if source.finished:  # it ended before it had enough to go on air
                self._live_pending = None
                source.take_off_air("ended before it could go on air")
                reason = source.end_reason or "ended"
                self._emit(LiveEnded(source, self._heard(0), reason, heard=False))
            return
        self._live_pending = None
        fade = _seconds_to_samples(LIVE_FADE_S)
        for player in list(self._players):
            if player.started:
                player.skipped = True
                player.fade_out_now(fade)
            else:
                self._hold_back(player)
        live = _Player(source, auto_dj=False)
        live.fade_in_len = fade if self._players else 0
        self._players.append(live)

    def _hold_back(self, player: _Player) -> None:
        """A song about to segue in waits, prepared, until the live source ends."""
        self._players.remove(player)
        reader = player.reader
        assert isinstance(reader, _TrackReader)
        if self._prepared is not None:
            self._decoder.discard(self._prepared.reader)
        self._prepared = _Prepared(reader, player.auto_dj)
        if not player.auto_dj:
            self._upcoming.insert(0, reader.track)

    def _watch_live(self) -> None:
        lead = self._lead()
        if lead is None or lead.live is None or not lead.started or lead.live.finished:
            return
        if lead.live.ring.count < _seconds_to_samples(LIVE_LOW_WATER_S):
            lead.live.stall()

    def _schedule_segue(self) -> None:
        lead = self._players[-1] if self._players else None
        if lead is None or lead.successor_scheduled or not lead.reader.finished:
            return
        # A live source's ring may have been trimmed: its end is what it holds now.
        total = lead.position + lead.live.ring.count if lead.live is not None else lead.reader.total
        remaining = total - lead.position
        if remaining > self._crossfade + FRAME_SAMPLES:
            return
        length = min(self._crossfade, remaining)
        fade_at = total - length
        delay = lead.delay + fade_at - lead.position
        if self._start_prepared(delay=delay, fade_in=length) is None:
            # Nothing ready to follow: the song plays out its own ending untouched.
            return
        lead.successor_scheduled = True
        lead.fade_out_at = fade_at
        lead.fade_out_len = length
        lead.end_at = total

    def _skip_now(self) -> None:
        length = _seconds_to_samples(SKIP_FADE_S)
        waiting = [p for p in self._players if not p.started]
        for player in self._players:
            if player.started:
                player.skipped = True
                player.fade_out_now(length)
        if waiting:
            # The segue was about to start: the song it leads into starts now instead.
            for player in waiting:
                player.delay = 0
                player.fade_in_len = length
            return
        self._start_prepared(delay=0, fade_in=length)

    def _cut_now(self) -> None:
        """Skip while paused: nothing is heard, so the songs on air end at once, and a song
        that was about to segue in starts from its top on ``play``."""
        for player in self._players:
            if player.started:
                player.skipped = True
                player.ended_pts = self._heard(0)
            else:
                player.delay = 0
                player.fade_in_len = 0
        self._retire_ended()

    def _ask_auto_dj_if_due(self) -> None:
        if self._prepared is not None or self._upcoming or self._pts < self._next_auto_dj_pts:
            return
        lead = self._lead()
        due = (
            lead is None
            or lead.successor_scheduled
            or lead.remaining_estimate() <= self._crossfade + _seconds_to_samples(AUTO_DJ_LEAD_S)
        )
        if not due:
            return
        # While a live source plays, a pick is prepared for when it ends: no news for the crew.
        if not self._dry_reported and (lead is None or lead.live is None):
            self._dry_reported = True
            self._emit(QueueEmpty(self._heard(0)))
        if self._on_need_track is None:
            return
        self._next_auto_dj_pts = self._pts + _seconds_to_samples(AUTO_DJ_RETRY_S)
        try:
            track = self._on_need_track()
        except Exception:
            logger.exception("auto-DJ failed to pick a track")
            return
        if track is None:
            return
        if track.path in self._unplayable:
            self._report_known_failure(track)
            return
        self._prepared = _Prepared(self._open(track), auto_dj=True)

    def _heard(self, offset: int) -> int:
        return self._pts + offset + self._event_latency

    def _emit(self, event: DeckEvent) -> None:
        if self._on_event is None:
            return
        # A listener's bug must not silence the show; it is logged, as events are rare.
        try:
            self._on_event(event)
        except Exception:
            logger.exception("deck event listener failed", extra={"event": type(event).__name__})


def _item_key(track: DeckTrack) -> tuple[int | None, Path]:
    return (track.queue_item_id, track.path)


def _clamp_crossfade(seconds: float) -> float:
    return min(MAX_CROSSFADE_S, max(0.0, seconds))


def _seconds_to_samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)
