"""The show's recorder: the program, as listeners hear it, written to disk while the show airs.

The recorder is one more subscriber of the show's `ProgramFeed`. Its `push` (inside the
studio's 20 ms tick) only puts the frame on a queue; a thread of its own encodes lossless FLAC
and writes the files, so the studio never waits for a disk.

A recording is a folder per show, a sub-folder per studio run (a node that restarts resumes the
show with a new program clock) and, in each, a FLAC file per few minutes with a JSON manifest
beside it: the program pts of its first sample, the Unix time that sample was heard at and,
once the file is closed, how many samples it holds. A crash loses at most what the open file
had not flushed; its manifest has no sample count yet, and the reader counts by decoding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from onair.media.feed import ProgramFeed
from onair.studio.frames import CHANNELS, SAMPLE_RATE, ProgramFrame, Samples

__all__ = [
    "RecordedSegment",
    "ShowRecorder",
    "read_recording",
    "recording_dir",
    "segment_audio",
    "start_recording",
]

log = logging.getLogger("onair.replays.recorder")

QUEUE_FRAMES = 3000
"""A minute of program may wait for the disk before frames are lost (about 23 MB)."""
TIME_BASE = Fraction(1, SAMPLE_RATE)


def recording_dir(root: Path, show_id: int) -> Path:
    return root / f"show-{show_id}"


@dataclass(frozen=True)
class RecordedSegment:
    """One FLAC file of a show's recording."""

    path: Path
    first_pts: int
    wallclock: float
    """Unix time at which its first sample was heard."""
    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def end_wallclock(self) -> float:
        return self.wallclock + self.duration_s


class ShowRecorder:
    """Records one studio run of a show into `folder/<run>/`; `push` never blocks."""

    def __init__(self, show_id: int, folder: Path, *, segment_s: float = 300.0) -> None:
        if segment_s <= 0:
            raise ValueError("segments must be longer than 0 s")
        self.show_id = show_id
        self.folder = folder
        self.segment_samples = max(1, round(segment_s * SAMPLE_RATE))
        self.dropped = 0
        """Frames lost because the disk fell a minute behind (each loss starts a new file)."""
        self.failed = False
        self._frames: queue.Queue[ProgramFrame | None] = queue.Queue(QUEUE_FRAMES)
        self._thread = threading.Thread(
            target=self._work, name=f"recorder-show{show_id}", daemon=True
        )
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def push(self, frame: ProgramFrame) -> None:
        try:
            self._frames.put_nowait(frame)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Writes what is queued, closes the open file and waits for the thread (blocking:
        call it from a thread, e.g. `asyncio.to_thread`)."""
        if not self._started:
            return
        self._frames.put(None)
        self._thread.join()

    # --- the writer thread

    def _work(self) -> None:
        writer: _SegmentWriter | None = None
        try:
            run = _new_run(self.folder)
            seq = 0
            while True:
                frame = self._frames.get()
                if frame is None:
                    break
                if writer is not None and (
                    writer.next_pts != frame.pts or writer.samples >= self.segment_samples
                ):
                    if writer.next_pts != frame.pts:
                        log.warning(
                            "recording gap show=%s at pts=%d (%d frames dropped so far)",
                            self.show_id,
                            writer.next_pts,
                            self.dropped,
                        )
                    writer.close()
                    writer = None
                if writer is None:
                    seq += 1
                    writer = _SegmentWriter(run / f"seg-{seq:05d}", frame)
                writer.write(frame.samples)
        except Exception:
            self.failed = True
            log.exception("recorder failed show=%s", self.show_id)
            # Keep draining so `push` never finds a full queue, and `close` returns.
            while self._frames.get() is not None:
                pass
        finally:
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        log.info("recording closed show=%s dropped_frames=%d", self.show_id, self.dropped)


def _new_run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    runs = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    run = folder / f"{max(runs, default=0) + 1:04d}"
    run.mkdir()
    return run


class _SegmentWriter:
    def __init__(self, stem: Path, first: ProgramFrame) -> None:
        self.stem = stem
        self.first_pts = first.pts
        self.wallclock = first.wallclock
        self.samples = 0
        self._container: Any = av.open(str(stem.with_suffix(".flac")), "w", format="flac")
        self._stream: Any = self._container.add_stream("flac", rate=SAMPLE_RATE, layout="stereo")
        self._write_manifest(None)

    @property
    def next_pts(self) -> int:
        return self.first_pts + self.samples

    def write(self, samples: Samples) -> None:
        pcm = np.clip(samples, -1.0, 1.0) * 32767.0
        interleaved = np.ascontiguousarray(pcm.T.astype(np.int16)).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        frame.pts = self.samples
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.samples += samples.shape[1]

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._write_manifest(self.samples)

    def _write_manifest(self, samples: int | None) -> None:
        manifest = {
            "first_pts": self.first_pts,
            "wallclock": self.wallclock,
            "rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "samples": samples,
        }
        path = self.stem.with_suffix(".json")
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(manifest))
        os.replace(temporary, path)


# --- reading a recording back


def read_recording(folder: Path) -> list[RecordedSegment]:
    """The show's segments in the order they aired (blocking: file reads)."""
    if not folder.is_dir():
        return []
    found: list[RecordedSegment] = []
    for manifest in sorted(folder.glob("*/seg-*.json")):
        audio = manifest.with_suffix(".flac")
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            log.warning("unreadable recording manifest %s", manifest)
            continue
        if not audio.is_file():
            continue
        samples = meta.get("samples")
        if samples is None:  # the file open when the node stopped: count what survived
            samples = sum(chunk.shape[1] for chunk in segment_audio(audio))
        if samples > 0:
            found.append(
                RecordedSegment(audio, int(meta["first_pts"]), float(meta["wallclock"]), samples)
            )
    found.sort(key=lambda s: s.wallclock)
    return found


def segment_audio(path: Path) -> Iterator[Samples]:
    """A segment's audio as float32 (CHANNELS, n) chunks; stops quietly at a torn end."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                pcm = frame.to_ndarray()
                if frame.format.is_packed:
                    pcm = pcm.reshape(-1, CHANNELS).T
                yield pcm.astype(np.float32) / np.float32(32768.0)
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        log.warning("recording %s ends early: %s", path, exc)


def start_recording(feed: ProgramFeed, root: Path, segment_s: float) -> ShowRecorder:
    """Records the show's program from the next frame on, into `root/show-<id>/<run>/`."""
    recorder = ShowRecorder(feed.show_id, recording_dir(root, feed.show_id), segment_s=segment_s)
    recorder.start()
    feed.subscribe(recorder)
    return recorder
