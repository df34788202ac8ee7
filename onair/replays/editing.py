"""Cutting a replay from a show's recording: which stretches stay, where chapters go, the MP3.

Everything is aligned by wall-clock time: the play log says when each song was heard
(`started_at`, the start of its fade-in, and when it stopped), and each recorded segment says
when its first sample was heard. A talk replay drops every stretch of music (widened by a small
guard, and with gaps too short to be talk folded in) and fades the talk in and out at each cut;
a full replay keeps everything. Rendering streams segment by segment, so a show of hours never
sits in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from onair.replays.recorder import RecordedSegment, segment_audio
from onair.studio.frames import SAMPLE_RATE, Samples

__all__ = [
    "Chapter",
    "EditPlan",
    "Played",
    "Rendered",
    "Span",
    "full_plan",
    "render_mp3",
    "talk_plan",
]

FADE_S = 0.4
"""Fade at each cut of a talk replay."""
GUARD_S = 0.15
"""Music stretches are widened by this much each side: the play log's end is noted by the
bookkeeping a moment after the last sample, and a cut must never let a note through."""
MIN_TALK_S = 1.5
"""Talk shorter than this between two songs is not kept (it is a crossfade's edge, not talk)."""
BIT_RATE = 128_000


@dataclass(frozen=True)
class Span:
    start: float
    end: float


@dataclass(frozen=True)
class Played:
    """One song as the play log has it, in Unix seconds."""

    start: float
    end: float
    title: str
    """As a chapter says it: "Artist, Artist - Title"."""


@dataclass(frozen=True)
class Chapter:
    at: float
    """Unix time in the recording where the chapter starts."""
    title: str


@dataclass(frozen=True)
class EditPlan:
    cuts: tuple[Span, ...] = ()
    """Stretches left out, in Unix seconds, sorted and apart."""
    chapters: tuple[Chapter, ...] = ()
    fade_s: float = FADE_S


@dataclass
class Rendered:
    duration_s: float
    bytes: int
    chapters: list[dict[str, Any]] = field(default_factory=list)
    """Podcasting 2.0 JSON chapters: {"startTime": seconds, "title": ...}."""


def music_spans(plays: Sequence[Played], *, guard_s: float = GUARD_S) -> list[Span]:
    """The music, widened by the guard, with gaps shorter than MIN_TALK_S closed."""
    spans: list[Span] = []
    for play in sorted(plays, key=lambda p: p.start):
        start, end = play.start - guard_s, max(play.end, play.start) + guard_s
        if spans and start - spans[-1].end < MIN_TALK_S:
            spans[-1] = Span(spans[-1].start, max(spans[-1].end, end))
        else:
            spans.append(Span(start, end))
    return spans


def talk_plan(recorded: Span, plays: Sequence[Played]) -> EditPlan:
    """The talk between the songs, a chapter at the start of each stretch of it."""
    cuts = music_spans(plays)
    # A stretch of talk too short at either end of the show is dropped with the music.
    if cuts and cuts[0].start - recorded.start < MIN_TALK_S:
        cuts[0] = Span(min(cuts[0].start, recorded.start), cuts[0].end)
    if cuts and recorded.end - cuts[-1].end < MIN_TALK_S:
        cuts[-1] = Span(cuts[-1].start, max(cuts[-1].end, recorded.end))
    chapters: list[Chapter] = []
    if not cuts or cuts[0].start > recorded.start:
        chapters.append(Chapter(recorded.start, "Opening"))
    for cut in cuts:
        if cut.end >= recorded.end:
            continue
        songs = [p.title for p in plays if cut.start <= p.start and p.start < cut.end]
        chapters.append(Chapter(cut.end, _after(songs)))
    return EditPlan(tuple(cuts), tuple(chapters))


def _after(songs: Sequence[str]) -> str:
    """A talk chapter's title, named after the music just cut: a set of many songs by its
    first and last, so a podcast app's chapter list stays readable."""
    if not songs:
        return "Talk"
    if len(songs) <= 2:
        return "After " + "; ".join(songs)
    return f"After {songs[0]} … {songs[-1]} ({len(songs)} songs)"


def full_plan(recorded: Span, plays: Sequence[Played]) -> EditPlan:
    """Everything, a chapter at each song and at each stretch of talk between them."""
    chapters: list[Chapter] = []
    spans = music_spans(plays, guard_s=0.0)
    if not spans or spans[0].start - recorded.start >= MIN_TALK_S:
        chapters.append(Chapter(recorded.start, "Opening"))
    for play in sorted(plays, key=lambda p: p.start):
        chapters.append(Chapter(max(play.start, recorded.start), play.title))
    for span in spans:
        if recorded.end - span.end >= MIN_TALK_S and not any(
            span.end <= p.start < span.end + MIN_TALK_S for p in plays
        ):
            chapters.append(Chapter(span.end, "Talk"))
    chapters.sort(key=lambda c: c.at)
    return EditPlan((), tuple(chapters))


class _Envelope:
    """Per-sample keep mask and gain for a plan, in seconds relative to a base time."""

    def __init__(self, plan: EditPlan, base: float) -> None:
        self.starts = np.array([c.start - base for c in plan.cuts], dtype=np.float64)
        self.ends = np.array([c.end - base for c in plan.cuts], dtype=np.float64)
        self.fade = max(plan.fade_s, 1e-6)

    def at(self, t: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.bool_], Any]:
        if not len(self.starts):
            return np.ones(len(t), dtype=bool), None
        k = np.searchsorted(self.starts, t, side="right")
        prev_end = np.where(k > 0, self.ends[np.maximum(k - 1, 0)], -np.inf)
        next_start = np.where(
            k < len(self.starts), self.starts[np.minimum(k, len(self.starts) - 1)], np.inf
        )
        keep = t >= prev_end
        gain = np.minimum((t - prev_end) / self.fade, (next_start - t) / self.fade)
        return keep, np.clip(gain, 0.0, 1.0).astype(np.float32)


def render_mp3(
    segments: Sequence[RecordedSegment],
    plan: EditPlan,
    out_path: Path,
    *,
    title: str,
    artist: str,
    album: str = "OnAir",
) -> Rendered:
    """Writes the replay as MP3 (blocking: run it in a thread). The file appears whole or not
    at all (written beside it, then renamed)."""
    if not segments:
        raise ValueError("nothing was recorded")
    base = segments[0].wallclock
    envelope = _Envelope(plan, base)
    pending = sorted(plan.chapters, key=lambda c: c.at)
    chapters: list[dict[str, Any]] = []
    written = 0
    partial = out_path.with_name(out_path.name + ".part")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    container: Any = av.open(str(partial), "w", format="mp3")
    try:
        container.metadata.update({"title": title, "artist": artist, "album": album})
        stream: Any = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="stereo")
        stream.bit_rate = BIT_RATE
        for segment in segments:
            offset = segment.wallclock - base
            for chunk in segment_audio(segment.path):
                n = chunk.shape[1]
                t = offset + np.arange(n, dtype=np.float64) / SAMPLE_RATE
                keep, gain = envelope.at(t)
                while pending and pending[0].at - base < offset + n / SAMPLE_RATE:
                    index = max(0, math.ceil((pending[0].at - base - offset) * SAMPLE_RATE))
                    start = (written + int(keep[:index].sum())) / SAMPLE_RATE
                    _add_chapter(chapters, start, pending.pop(0).title)
                offset += n / SAMPLE_RATE
                kept: Samples = chunk if keep.all() else chunk[:, keep]
                if gain is not None:
                    kept = kept * gain[keep]
                if kept.shape[1]:
                    _encode(container, stream, kept, written)
                    written += kept.shape[1]
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    if written == 0:
        partial.unlink(missing_ok=True)
        raise ValueError("the replay would be empty: the whole recording was cut")
    partial.replace(out_path)
    duration = written / SAMPLE_RATE
    return Rendered(
        duration_s=duration,
        bytes=out_path.stat().st_size,
        chapters=[c for c in chapters if c["startTime"] < duration],
    )


def _add_chapter(chapters: list[dict[str, Any]], start: float, title: str) -> None:
    start = round(start, 2)
    if chapters and chapters[-1]["startTime"] >= start:
        # Two chapters at one place (a song right after a cut): the later one names it.
        chapters[-1] = {"startTime": chapters[-1]["startTime"], "title": title}
        return
    chapters.append({"startTime": start, "title": title})


def _encode(container: Any, stream: Any, samples: Samples, pts: int) -> None:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout="stereo"
    )
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = Fraction(1, SAMPLE_RATE)
    frame.pts = pts
    for packet in stream.encode(frame):
        container.mux(packet)
