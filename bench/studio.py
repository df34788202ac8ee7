"""Live rooms one core can mix, the cost of each part of a room, and Liquidsoap in the same run.

A room is what a live show costs the server: the deck playing a queue of real MP3 songs with
crossfades, one voice on air (a read-speech clip pushed 20 ms at a time, as WebRTC delivers it),
the mixer (ducker, limiter, the voice's mix-minus return) and the program encoded once to Opus
(WebRTC) and once to AAC (HLS and .aac). The process is pinned to one CPU (the least busy one
unless ``--cpu``), and every cost is process CPU time (all threads, so the encoders' worker
threads count) over ``--seconds`` of program rendered as fast as the CPU allows, in
``--repeats`` rounds that each measure every part (so a busy spell on a shared machine spreads
over all of them), median of the rounds:

- each part on its own: the deck (decoding on the frame path, crossfades, track gain), the voice
  (push + jitter-buffer pull), the mixer (ducker + limiter + mix-minus), ``Studio.render_frame``
  with all three, each encoder (the real ``OpusEncoder``/``AacEncoder`` worker threads) and,
  for scale, each bare codec;
- (a) a room's encoders alone (Opus + AAC) and (b) the full room (studio + Opus + AAC), as rooms
  per core = 20 ms / CPU per 20 ms frame. The target is (b) >= 0.85 x (a), i.e. the studio's own
  work under 15 %; the check uses the ratio of (a) and (b) measured side by side in each round;
- Liquidsoap (Debian's package, installed with apt-get if missing) doing the same room from a
  generated .liq script: the same songs with the same per-track gains and a 3 s crossfade, the
  same speech looping, a side-chain ducker keyed from the voice's RMS, a limiter on the program
  and on a mix-minus return, Opus 96 kb/s and AAC 128 kb/s written to files, on a clock with
  sync="none" (as fast as it can). Its CPU (utime + stime of every thread) per second of
  program (counted from the AAC file's ADTS frames), after a warm-up, gives its rooms per core;
- a real-time check: the predicted number of rooms run together in this process, each a
  ``Studio.run`` on the event loop with background decoding, a voice fed every 20 ms on its own
  schedule and both encoders, started 0.1 s apart and measured for ``--rt-seconds`` after a
  warm-up: CPU per room-frame, how late frames were rendered against each room's schedule,
  encoder drops, underruns. While more than 1 % of frames are late (up to three runs) it runs
  again with as many rooms as fill 85 % of what other work left of the CPU at the cost the run
  measured. Then Liquidsoap runs the last number of rooms in real time (one process, a clock
  per room) for the same comparison.

The songs are short demo-catalog songs (20-40 s, cached in bench/out/studio/songs) so that 30 s
of program holds crossfades; with 3-minute songs there is less overlapped decoding, so this is
slightly pessimistic for both OnAir and Liquidsoap. Other work may run on the pinned CPU too:
CPU time is robust to that (the tables say how busy the CPU was), lateness is not.

    .venv/bin/python bench/studio.py
    .venv/bin/python bench/studio.py --seconds 60 --repeats 7 --rt-rooms 12
    .venv/bin/python bench/studio.py --skip-liquidsoap --skip-realtime
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np
import numpy.typing as npt
from machine import cpu_model, cpu_seconds
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.catalog.audiofile import probe_audio_file  # noqa: E402
from onair.catalog.demo import generate_demo_catalog  # noqa: E402
from onair.media.encoder import EncodedPacket, Encoder, Format, shared_encoder  # noqa: E402
from onair.media.feed import ProgramFeed  # noqa: E402
from onair.studio.deck import DeckEvent, DeckTrack, MusicDeck, TrackStarted  # noqa: E402
from onair.studio.deck import loudness_gain_db as track_gain_db  # noqa: E402
from onair.studio.frames import FRAME_SAMPLES, SAMPLE_RATE, ProgramFrame, Samples  # noqa: E402
from onair.studio.mixer import Mixer  # noqa: E402
from onair.studio.studio import Studio  # noqa: E402
from onair.studio.voice import VoiceInput  # noqa: E402

OUT: Final = ROOT / "bench" / "out" / "studio"
SONGS_DIR: Final = OUT / "songs"
SONG_SEED: Final = 11
SPEECH: Final = Path("/work/shared/data/audio/5703-47212-0000.hq.ogg")
FRAME_S: Final = FRAME_SAMPLES / SAMPLE_RATE
CROSSFADE_S: Final = 3.0
TARGET_LUFS: Final = -16.0
OPUS_KBPS: Final = 96  # OpusEncoder.default_bit_rate
AAC_KBPS: Final = 128  # AacEncoder's (Encoder.default_bit_rate)
OVERHEAD_TARGET: Final = 0.85
# Frames published to the encoders before waiting for them: their queues hold 50 frames, and the
# codecs keep up to about 4,000 samples (AAC's frame plus look-ahead) before emitting a packet.
BATCH_FRAMES: Final = 10
CODEC_SLACK: Final = 5 * FRAME_SAMPLES
WAIT_TIMEOUT_S: Final = 30.0
ROOM_START_INTERVAL_S: Final = 0.1
# When the predicted number of rooms runs late, the real-time check runs again with as many as
# fill this share of what other work left of the CPU.
STEP_DOWN: Final = 0.85
LATE_LIMIT: Final = 0.01
MAX_LEVELS: Final = 3
OUTPUT_WIDTH: Final = 140

console = Console(stderr=True)
Mono = npt.NDArray[np.float32]


# --- the machine


def cpu_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == f"cpu{cpu}":
            ticks = [int(v) for v in values[:8]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return sum(ticks) - idle, sum(ticks)
    raise LookupError(f"cpu{cpu} is not in /proc/stat")


class CpuWatch:
    """How busy one CPU was between two points, and how much of that was this process."""

    def __init__(self, cpu: int, pid: int | None = None) -> None:
        self._cpu, self._pid = cpu, pid
        self._start = self._sample()

    def _sample(self) -> tuple[int, int, float, float]:
        busy, total = cpu_ticks(self._cpu)
        ours = time.process_time() if self._pid is None else cpu_seconds(self._pid)
        return busy, total, ours, time.monotonic()

    def shares(self) -> tuple[float, float]:
        """(this process, everything else) as shares of the CPU since the start."""
        busy0, total0, ours0, wall0 = self._start
        busy1, total1, ours1, wall1 = self._sample()
        ours = (ours1 - ours0) / (wall1 - wall0)
        busy = (busy1 - busy0) / max(1, total1 - total0)
        return ours, max(0.0, busy - ours)


def least_busy_cpu(allowed: Sequence[int], seconds: float = 1.0) -> int:
    before = {cpu: cpu_ticks(cpu) for cpu in allowed}
    time.sleep(seconds)
    load = {}
    for cpu in allowed:
        busy, total = cpu_ticks(cpu)
        load[cpu] = (busy - before[cpu][0]) / max(1, total - before[cpu][1])
    return min(allowed, key=lambda cpu: (load[cpu], -cpu))


def pin_to_one_cpu(cpu: int | None) -> int:
    """Pin every thread of this process (and so every thread and child started later)."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = least_busy_cpu(allowed) if cpu is None else cpu
    if chosen not in allowed:
        raise SystemExit(f"CPU {chosen} is not available to this process (allowed: {allowed})")
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {chosen})
    return chosen


def wait_for_threads_to_end(prefixes: tuple[str, ...], timeout: float = 10.0) -> None:
    """Encoder and decoder threads left from one measurement must not bill the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(t.name.startswith(prefixes) for t in threading.enumerate()):
            return
        time.sleep(0.01)
    raise RuntimeError(f"threads still running: {[t.name for t in threading.enumerate()]}")


# --- the material: songs and a voice


def prepare_songs(count: int) -> list[DeckTrack]:
    """Short demo songs (made once), measured like the catalog importer measures them."""
    songs = generate_demo_catalog(
        SONGS_DIR, count, seed=SONG_SEED, workers=1, min_duration_s=20.0, max_duration_s=40.0
    )
    cache = SONGS_DIR / "loudness.json"
    known: dict[str, list[float | None]] = {}
    if cache.is_file():
        known = json.loads(cache.read_text())
    tracks: list[DeckTrack] = []
    for i, song in enumerate(songs):
        key = f"{song.path.name}:{song.path.stat().st_mtime_ns}"
        if key not in known:
            info = probe_audio_file(song.path)
            known[key] = [info.duration_s, info.loudness_lufs]
        duration_s, lufs = known[key]
        assert duration_s is not None
        tracks.append(
            DeckTrack(
                queue_item_id=i + 1,
                track_id=i + 1,
                path=song.path,
                title=song.title,
                artists=tuple(song.artists),
                loudness_lufs=lufs,
                duration_s=duration_s,
            )
        )
    cache.write_text(json.dumps(known, indent=1))
    return tracks


def a_long_queue(tracks: Sequence[DeckTrack], seconds: float, rotate: int = 0) -> list[DeckTrack]:
    """The songs repeated (each repeat a new queue item) until the queue outlasts ``seconds``."""
    queue: list[DeckTrack] = []
    total = 0.0
    i = rotate
    while total < seconds + 60.0:
        song = tracks[i % len(tracks)]
        queue.append(
            DeckTrack(
                queue_item_id=len(queue) + 1,
                track_id=song.track_id,
                path=song.path,
                title=song.title,
                artists=song.artists,
                loudness_lufs=song.loudness_lufs,
                duration_s=song.duration_s,
            )
        )
        total += song.duration_s - CROSSFADE_S
        i += 1
    return queue


def load_voice(path: Path) -> tuple[Mono, str]:
    """The speech clip at 48 kHz mono; noise bursts when the clip is not there."""
    if path.is_file():
        chunks: list[Mono] = []
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
        return np.concatenate(chunks).astype(np.float32), f"speech clip {path.name}"
    rng = np.random.default_rng(5)
    bursts = []
    for _ in range(8):
        talk = rng.standard_normal(round(1.2 * SAMPLE_RATE)).astype(np.float32) * 0.1
        bursts += [talk, np.zeros(round(0.6 * SAMPLE_RATE), dtype=np.float32)]
    return np.concatenate(bursts), "noise bursts (1.2 s on, 0.6 s off)"


class VoiceLoop:
    """The voice, looping, one 20 ms chunk at a time: what a WebRTC receiver pushes."""

    def __init__(self, samples: Mono) -> None:
        pad = (-samples.shape[0]) % FRAME_SAMPLES
        whole = np.concatenate([samples, np.zeros(pad, dtype=np.float32)])
        self._chunks = whole.reshape(-1, FRAME_SAMPLES)
        self._next = 0

    def chunk(self) -> Mono:
        chunk = self._chunks[self._next % len(self._chunks)]
        self._next += 1
        return chunk


# --- measuring


def cpu_per_frame(run: Callable[[], int]) -> float:
    """CPU seconds (every thread of the process) per frame of ``run``, which returns frames."""
    start = time.process_time()
    frames = run()
    return (time.process_time() - start) / frames


class PacketCounter:
    """An encoder sink that counts the samples it has been given and lets a thread wait."""

    def __init__(self) -> None:
        self.samples = 0
        self.packets = 0
        self._awaited: int | None = None
        self._cond = threading.Condition()

    def __call__(self, packet: EncodedPacket) -> None:
        with self._cond:
            self.samples += packet.duration
            self.packets += 1
            # Waking the waiting thread for every packet would bill the encoder for it.
            if self._awaited is not None and self.samples >= self._awaited:
                self._cond.notify_all()

    def wait_for(self, samples: int) -> None:
        with self._cond:
            self._awaited = samples
            try:
                if not self._cond.wait_for(lambda: self.samples >= samples, WAIT_TIMEOUT_S):
                    raise RuntimeError(f"encoder stalled at {self.samples} of {samples} samples")
            finally:
                self._awaited = None


class EncoderDrops(logging.Handler):
    """Counts the frames the encoders report having dropped (they log it; nothing else does)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.frames = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("encoder behind") and isinstance(record.args, tuple):
            self.frames += int(record.args[-1])  # type: ignore[call-overload]


@dataclass
class Outputs:
    """A room's program feed with its Opus and AAC encoders, each with a counting sink."""

    feed: ProgramFeed
    encoders: list[Encoder]
    counters: list[PacketCounter]
    published: int = 0

    @classmethod
    def start(cls, show_id: int, formats: Sequence[Format]) -> Outputs:
        feed = ProgramFeed(show_id, encoder_grace=0.0)
        encoders = [shared_encoder(feed, fmt) for fmt in formats]
        counters = [PacketCounter() for _ in formats]
        for encoder, counter in zip(encoders, counters, strict=True):
            encoder.attach(counter)
        return cls(feed, encoders, counters)

    def publish(self, frame: ProgramFrame) -> None:
        self.feed.publish(frame)
        self.published += frame.samples.shape[1]

    def catch_up(self, final: bool = False) -> None:
        """Wait until every encoder has encoded what was published (but its codec delay)."""
        for counter in self.counters:
            counter.wait_for(self.published - CODEC_SLACK * (2 if final else 1))

    def close(self) -> None:
        self.feed.close()


def encode_cost(program: Sequence[ProgramFrame], formats: Sequence[Format]) -> float:
    """CPU per frame of encoding ``program`` with the real encoders (their worker threads)."""
    outputs = Outputs.start(1, formats)
    try:
        for frame in program[:BATCH_FRAMES]:  # codecs opened and threads running
            outputs.publish(frame)
        outputs.catch_up()

        def run() -> int:
            for k, frame in enumerate(program[BATCH_FRAMES:], start=1):
                outputs.publish(frame)
                if k % BATCH_FRAMES == 0:
                    outputs.catch_up()
            outputs.catch_up(final=True)
            return len(program) - BATCH_FRAMES

        return cpu_per_frame(run)
    finally:
        outputs.close()
        wait_for_threads_to_end(("encoder-",))


def codec_cost(program: Sequence[ProgramFrame], fmt: Format) -> float:
    """CPU per frame of the codec alone (PyAV's encode, frames made beforehand), opened and fed
    exactly as the encoder opens and feeds it: what the Encoder class adds is the difference."""
    encoder = shared_encoder(ProgramFeed(1), fmt)
    # The encoder's own (private) opening and framing, so the settings cannot drift apart.
    ctx = encoder._open_codec()
    size = ctx.frame_size or FRAME_SAMPLES
    pcm = np.concatenate([frame.samples for frame in program], axis=1)
    frames = []
    for start in range(0, pcm.shape[1] - size + 1, size):
        frame = encoder._frame(np.ascontiguousarray(pcm[:, start : start + size]))
        frame.sample_rate, frame.time_base, frame.pts = SAMPLE_RATE, Fraction(1, SAMPLE_RATE), start
        frames.append(frame)

    def run() -> int:
        for frame in frames:
            for packet in ctx.encode(frame):
                bytes(packet)
        return len(frames) * size // FRAME_SAMPLES

    return cpu_per_frame(run)


def deck_cost(tracks: Sequence[DeckTrack], frames: int) -> tuple[float, int]:
    """CPU per frame of the deck decoding on the frame path; and the segues it made."""
    starts: list[DeckEvent] = []
    deck = MusicDeck(
        crossfade_s=CROSSFADE_S,
        target_lufs=TARGET_LUFS,
        on_event=lambda e: starts.append(e) if isinstance(e, TrackStarted) else None,
        decode_in_background=False,
    )
    deck.set_queue(a_long_queue(tracks, frames * FRAME_S))
    deck.play()

    def run() -> int:
        for _ in range(frames):
            deck.next_frame()
        return frames

    try:
        return cpu_per_frame(run), len(starts) - 1
    finally:
        deck.close()


def voice_cost(voice: Mono, frames: int) -> float:
    loop = VoiceLoop(voice)
    host = VoiceInput("host")

    def run() -> int:
        for _ in range(frames):
            host.push(loop.chunk())
            host.pull()
        return frames

    return cpu_per_frame(run)


def mix_cost(music: Sequence[Samples], voice: Sequence[Samples]) -> float:
    mixer = Mixer()
    beds = [m.copy() for m in music]  # the mixer ducks the music in place

    def run() -> int:
        for bed, talk in zip(beds, voice, strict=True):
            mixer.mix(bed, {"host": talk})
            mixer.mixminus("host")
        return len(beds)

    return cpu_per_frame(run)


def a_studio(tracks: Sequence[DeckTrack], seconds: float, *, background: bool) -> Studio:
    studio = Studio(
        crossfade_s=CROSSFADE_S, target_lufs=TARGET_LUFS, decode_in_background=background
    )
    studio.deck.set_queue(a_long_queue(tracks, seconds))
    studio.deck.play()
    studio.add_voice("host")
    return studio


def studio_cost(tracks: Sequence[DeckTrack], voice: Mono, frames: int) -> float:
    studio = a_studio(tracks, frames * FRAME_S, background=False)
    host, loop = studio.voice("host"), VoiceLoop(voice)

    def run() -> int:
        for _ in range(frames):
            host.push(loop.chunk())
            studio.render_frame()
        return frames

    try:
        return cpu_per_frame(run)
    finally:
        studio.close()


def room_cost(tracks: Sequence[DeckTrack], voice: Mono, frames: int) -> float:
    """The full room: the studio (decoding on the frame path) into Opus and AAC."""
    studio = a_studio(tracks, frames * FRAME_S, background=False)
    host, loop = studio.voice("host"), VoiceLoop(voice)
    outputs = Outputs.start(1, ("opus", "aac"))

    def frame() -> None:
        host.push(loop.chunk())
        outputs.publish(studio.render_frame())

    def run() -> int:
        for k in range(1, frames + 1):
            frame()
            if k % BATCH_FRAMES == 0:
                outputs.catch_up()
        outputs.catch_up(final=True)
        return frames

    try:
        for _ in range(BATCH_FRAMES):
            frame()
        outputs.catch_up()
        return cpu_per_frame(run)
    finally:
        outputs.close()
        studio.close()
        wait_for_threads_to_end(("encoder-",))


def render_material(
    tracks: Sequence[DeckTrack], voice: Mono, frames: int
) -> tuple[list[Samples], list[Samples], list[ProgramFrame]]:
    """Music frames, voice frames and the program they make, for the parts measured alone."""
    deck = MusicDeck(crossfade_s=CROSSFADE_S, decode_in_background=False)
    deck.set_queue(a_long_queue(tracks, frames * FRAME_S))
    deck.play()
    host, loop = VoiceInput("host"), VoiceLoop(voice)
    music, talk = [], []
    for _ in range(frames):
        music.append(deck.next_frame())
        host.push(loop.chunk())
        talk.append(host.pull())
    deck.close()
    mixer = Mixer()
    program = [
        ProgramFrame(k * FRAME_SAMPLES, 0.0, mixer.mix(m.copy(), {"host": v}))
        for k, (m, v) in enumerate(zip(music, talk, strict=True))
    ]
    return music, talk, program


@dataclass
class Costs:
    """CPU seconds per 20 ms frame, one list entry per repeat."""

    runs: dict[str, list[float]] = field(default_factory=dict)
    segues: int = 0

    def add(self, name: str, value: float) -> None:
        self.runs.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> float:
        return statistics.median(self.runs[name])

    def paired_ratio(self) -> float:
        """Full-room rooms over encoder-only rooms, from runs made side by side (median)."""
        pairs = zip(self.runs["encoders"], self.runs["room"], strict=True)
        return statistics.median(encoders / room for encoders, room in pairs)

    def spread(self, name: str) -> float:
        values = self.runs[name]
        return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


def measure_costs(tracks: Sequence[DeckTrack], voice: Mono, seconds: float, repeats: int) -> Costs:
    frames = round(seconds / FRAME_S)
    music, talk, program = render_material(tracks, voice, frames)
    costs = Costs()
    # Round-robin, so a busy spell on the shared machine spreads over every part.
    for i in range(repeats):
        console.print(f"[dim]costs: round {i + 1} of {repeats}[/]")
        deck, costs.segues = deck_cost(tracks, frames)
        costs.add("deck", deck)
        costs.add("voice", voice_cost(voice, frames))
        costs.add("mix", mix_cost(music, talk))
        costs.add("studio", studio_cost(tracks, voice, frames))
        costs.add("opus", encode_cost(program, ("opus",)))
        costs.add("aac", encode_cost(program, ("aac",)))
        costs.add("opus codec", codec_cost(program, "opus"))
        costs.add("aac codec", codec_cost(program, "aac"))
        costs.add("encoders", encode_cost(program, ("opus", "aac")))
        costs.add("room", room_cost(tracks, voice, frames))
    return costs


# --- the real-time check


@dataclass
class RealtimeResult:
    rooms: int
    seconds: float
    cpu_s: float  # this process over the measured window
    cpu_share: float  # the same, as a share of the one core
    others_share: float  # other processes on the same CPU meanwhile
    frames: int
    late_frames: int
    p99_lateness_s: float
    max_lateness_s: float
    encoder_drops: int
    encoder_shortfall: int  # encoded samples missing at the end, beyond the codec delay
    deck_underruns: int
    voice_underruns: int

    @property
    def late_share(self) -> float:
        return self.late_frames / self.frames if self.frames else 0.0

    @property
    def cpu_per_room_frame(self) -> float:
        """Per frame rendered, not per frame due: a saturated core renders fewer."""
        return self.cpu_s / self.frames if self.frames else math.inf


class LiveRoom:
    """One room as ``LiveShow`` runs it: ``Studio.run`` publishing into the feed."""

    def __init__(self, index: int, tracks: Sequence[DeckTrack], voice: Mono, seconds: float):
        # Rooms start on different songs, so their segues do not all fall on one frame.
        self.studio = Studio(crossfade_s=CROSSFADE_S, target_lufs=TARGET_LUFS)
        self.studio.deck.set_queue(a_long_queue(tracks, seconds, rotate=index))
        self.studio.deck.play()
        self.host = self.studio.add_voice("host")
        self.voice = VoiceLoop(voice)
        self.outputs = Outputs.start(index + 1, ("opus", "aac"))
        self.lateness: list[float] = []
        self._origin: float | None = None

    def on_frame(self, frame: ProgramFrame) -> None:
        """The studio's sink: how late against its own schedule, then into the encoders."""
        now = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = now - frame.pts / SAMPLE_RATE
        self.lateness.append(now - (self._origin + frame.pts / SAMPLE_RATE))
        self.outputs.publish(frame)

    async def talk(self) -> None:
        """The host's microphone: 20 ms of speech every 20 ms, on its own schedule."""
        loop = asyncio.get_running_loop()
        origin = loop.time()
        k = 0
        while True:
            self.host.push(self.voice.chunk())
            k += 1
            await asyncio.sleep(max(0.0, origin + k * FRAME_S - loop.time()))

    def encoder_shortfall(self) -> int:
        expected = self.outputs.published - 2 * CODEC_SLACK
        return sum(max(0, expected - c.samples) for c in self.outputs.counters)

    def close(self) -> None:
        self.outputs.close()
        self.studio.close()


async def run_rooms(
    rooms: int,
    seconds: float,
    warmup: float,
    tracks: Sequence[DeckTrack],
    voice: Mono,
    cpu: int,
) -> RealtimeResult:
    """``rooms`` live rooms in this process, started a show at a time (as shows go live, not
    all on one frame), then measured for ``seconds`` after ``warmup``."""
    drops = EncoderDrops()
    logging.getLogger("onair.media.encoder").addHandler(drops)
    live: list[LiveRoom] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(rooms):
            room = LiveRoom(i, tracks, voice, warmup + seconds + 5.0)
            live.append(room)
            tasks.append(asyncio.create_task(room.studio.run(sink=room.on_frame)))
            tasks.append(asyncio.create_task(room.talk()))
            await asyncio.sleep(ROOM_START_INTERVAL_S)
        await asyncio.sleep(warmup)
        skip = [len(room.lateness) for room in live]
        drops.frames = 0
        watch = CpuWatch(cpu)
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        ours, others = watch.shares()
        wall = time.monotonic() - wall0
        cpu_s = ours * wall
        lateness = [x for room, n in zip(live, skip, strict=True) for x in room.lateness[n:]]
    finally:
        for room in live:
            room.studio.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.5)  # the encoders drain their queues
    result = RealtimeResult(
        rooms=rooms,
        seconds=wall,
        cpu_s=cpu_s,
        cpu_share=ours,
        others_share=others,
        frames=len(lateness),
        late_frames=sum(1 for x in lateness if x > FRAME_S),
        p99_lateness_s=float(np.percentile(lateness, 99)) if lateness else 0.0,
        max_lateness_s=max(lateness, default=0.0),
        encoder_drops=drops.frames,
        encoder_shortfall=sum(room.encoder_shortfall() for room in live),
        deck_underruns=sum(room.studio.deck.underruns for room in live),
        voice_underruns=sum(room.host.stats.underruns for room in live),
    )
    for room in live:
        room.close()
    logging.getLogger("onair.media.encoder").removeHandler(drops)
    wait_for_threads_to_end(("encoder-", "onair-deck-decoder"))
    return result


# --- Liquidsoap


@dataclass
class LiquidsoapResult:
    version: str
    rooms: int
    sync: str
    cpu_per_program_s: float  # CPU seconds per second of one room's program
    speed: float  # each room's program seconds per wall second while measured
    cpu_share: float  # of the one core, while measured
    others_share: float  # other processes on the same CPU meanwhile

    @property
    def cpu_per_frame(self) -> float:
        return self.cpu_per_program_s * FRAME_S


def ensure_liquidsoap(install: bool) -> str | None:
    """The liquidsoap binary, installed from Debian if missing and allowed; None to skip."""
    found = shutil.which("liquidsoap")
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        console.print("[yellow]liquidsoap is missing and apt-get cannot run here[/]")
        return None
    console.print("installing Debian's liquidsoap with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for commands in (
        [["apt-get", "install", "-y", "liquidsoap"]],
        [["apt-get", "update"], ["apt-get", "install", "-y", "liquidsoap"]],
    ):
        try:
            for command in commands:
                subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError):
            continue
        return shutil.which("liquidsoap")
    console.print("[yellow]apt-get could not install liquidsoap[/]")
    return None


_LIQ_HEADER: Final = f"""
settings.init.allow_root.set(true)
settings.log.stdout.set(true)
settings.log.level.set(3)
settings.frame.audio.samplerate.set({SAMPLE_RATE})
settings.frame.audio.channels.set(2)
"""

# One room, as close to OnAir's as Liquidsoap 2.1 can say it; {n} numbers the room.
_LIQ_ROOM: Final = f"""
# The queue: each song at the gain its measured loudness calls for, crossfaded over 3 s.
music_{{n}} = playlist(mode="normal", reload_mode="never", "{{playlist}}")
music_{{n}} = amplify(1., override="liq_amplify", music_{{n}})
music_{{n}} = crossfade(duration={CROSSFADE_S}, fade_in={CROSSFADE_S}, fade_out={CROSSFADE_S},
  music_{{n}})

# The host, and a side-chain ducker: about 12 dB down while the voice is above -40 dBFS.
voice_{{n}} = rms(duration=0.01, single("{{speech}}"))
duck_{{n}} = ref(1.)
def duck_gain_{{n}}() =
  target = if voice_{{n}}.rms() > 0.01 then 0.25 else 1. end
  duck_{{n}} := !duck_{{n}} + (target - !duck_{{n}}) * 0.2
  !duck_{{n}}
end
bed_{{n}} = amplify(duck_gain_{{n}}, music_{{n}})

# The program (limited) on its own clock, and the host's mix-minus return (limited too).
program_{{n}} = limit(add(normalize=false, [bed_{{n}}, voice_{{n}}]))
program_{{n}} = clock(sync="{{sync}}", mksafe(program_{{n}}))
mixminus_{{n}} = limit(bed_{{n}})
output.file(%ffmpeg(format="ogg", %audio(codec="libopus", b="{OPUS_KBPS}k",
  application="audio", frame_duration=20)), "{{out}}/room{{n}}.ogg", program_{{n}})
output.file(%ffmpeg(format="adts", %audio(codec="aac", b="{AAC_KBPS}k")),
  "{{out}}/room{{n}}.aac", program_{{n}})
output.dummy(mksafe(mixminus_{{n}}))
"""


def liquidsoap_script(out: Path, playlists: Sequence[Path], speech: Path, sync: str) -> str:
    rooms = (
        _LIQ_ROOM.format(n=n, playlist=playlist, speech=speech, sync=sync, out=out)
        for n, playlist in enumerate(playlists, start=1)
    )
    return _LIQ_HEADER + "".join(rooms)


def adts_seconds(path: Path) -> float:
    """Seconds of audio in the complete ADTS frames of a (growing) .aac file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0.0
    at, blocks = 0, 0
    while at + 7 <= len(data):
        if data[at] != 0xFF or data[at + 1] & 0xF0 != 0xF0:
            raise RuntimeError(f"{path} is not ADTS at byte {at}")
        length = ((data[at + 3] & 3) << 11) | (data[at + 4] << 3) | (data[at + 5] >> 5)
        if length < 7 or at + length > len(data):
            break
        blocks += (data[at + 6] & 3) + 1
        at += length
    return blocks * 1024 / SAMPLE_RATE


def write_wav(path: Path, samples: Mono) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def liquidsoap_version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return result.stdout.splitlines()[0] if result.stdout else "Liquidsoap (unknown version)"


def measure_liquidsoap(
    binary: str,
    tracks: Sequence[DeckTrack],
    voice: Mono,
    *,
    rooms: int,
    sync: str,
    seconds: float,
    warmup_program_s: float,
    cpu: int,
) -> LiquidsoapResult:
    """``rooms`` rooms in one Liquidsoap process on ``cpu``; ``sync="none"`` runs them as fast
    as they go, ``"cpu"`` in real time."""
    with tempfile.TemporaryDirectory(prefix="onair-bench-liq-") as tmp:
        work = Path(tmp)
        speech, script = work / "voice.wav", work / "rooms.liq"
        write_wav(speech, voice)
        playlists = []
        for n in range(rooms):
            # Rooms start on different songs, as OnAir's do.
            playlist = work / f"queue{n + 1}.m3u"
            order = [tracks[(n + i) % len(tracks)] for i in range(len(tracks))]
            playlist.write_text(
                "".join(
                    f'annotate:liq_amplify="{track_gain_db(t.loudness_lufs, TARGET_LUFS):.2f} dB"'
                    f":{t.path}\n"
                    for t in order
                )
            )
            playlists.append(playlist)
        script.write_text(liquidsoap_script(work, playlists, speech, sync))
        log_path = work / "liquidsoap.log"
        with log_path.open("wb") as log:
            # Started from this pinned process, so it runs on the same CPU.
            process = subprocess.Popen(
                [binary, str(script)], stdout=log, stderr=subprocess.STDOUT, cwd=work
            )
        try:
            outputs = [work / f"room{n + 1}.aac" for n in range(rooms)]
            cpu_per_program_s, speed, share, others = _sample_liquidsoap(
                process, outputs, seconds, warmup_program_s, log_path, cpu
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return LiquidsoapResult(
        version=liquidsoap_version(binary),
        rooms=rooms,
        sync=sync,
        cpu_per_program_s=cpu_per_program_s,
        speed=speed,
        cpu_share=share,
        others_share=others,
    )


def _sample_liquidsoap(
    process: subprocess.Popen[bytes],
    outputs: Sequence[Path],
    seconds: float,
    warmup_program_s: float,
    log_path: Path,
    cpu: int,
) -> tuple[float, float, float, float]:
    """(CPU per program second, speed, CPU share, other work's share) over ``seconds``."""
    deadline = time.monotonic() + 60.0 + 5.0 * len(outputs)
    while min(adts_seconds(path) for path in outputs) < warmup_program_s:
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError("liquidsoap produced no program:\n" + "\n".join(tail))
        time.sleep(0.2)
    watch = CpuWatch(cpu, process.pid)
    cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
    program0 = sum(adts_seconds(path) for path in outputs)
    time.sleep(seconds)
    cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
    program1 = sum(adts_seconds(path) for path in outputs)
    _, others = watch.shares()
    produced = program1 - program0
    if produced <= 0:
        raise RuntimeError("liquidsoap stopped producing program")
    wall = wall1 - wall0
    return (cpu1 - cpu0) / produced, produced / len(outputs) / wall, (cpu1 - cpu0) / wall, others


# --- the report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def rooms_per_core(cost_per_frame: float) -> float:
    return FRAME_S / cost_per_frame


def print_costs(costs: Costs, out: Console) -> None:
    table = Table(title="CPU per 20 ms frame of program, one core (median of repeats)")
    table.add_column("part")
    table.add_column("ms / frame", justify="right")
    table.add_column("% of a core", justify="right")
    table.add_column("spread (max-min)/median", justify="right")
    table.add_column("share of full room", justify="right")
    rows = (
        ("deck", f"deck: MP3 decode + crossfades ({costs.segues} in a run) + track gain"),
        ("voice", "voice: push 20 ms + jitter-buffer pull"),
        ("mix", "mix: ducker + limiter + mix-minus return"),
        ("studio", "studio.render_frame (deck + voice + mix)"),
        ("opus", f"Opus encode, {OPUS_KBPS} kb/s (OpusEncoder thread)"),
        ("opus codec", "  of which libopus itself (PyAV encode only)"),
        ("aac", f"AAC encode, {AAC_KBPS} kb/s (AacEncoder thread)"),
        ("aac codec", "  of which FFmpeg's aac itself (PyAV encode only)"),
        ("encoders", "(a) encoders alone: Opus + AAC"),
        ("room", "(b) full room: studio + Opus + AAC"),
    )
    for key, label in rows:
        value = costs[key]
        table.add_row(
            label,
            ms(value),
            f"{100 * value / FRAME_S:.2f}",
            f"{100 * costs.spread(key):.0f} %",
            f"{100 * value / costs['room']:.0f} %",
        )
    out.print(table)


def print_rooms(
    costs: Costs,
    liquidsoap: LiquidsoapResult | None,
    liquidsoap_note: str,
    out: Console,
) -> None:
    table = Table(title="Rooms per core (20 ms budget / CPU per frame)")
    table.add_column("configuration")
    table.add_column("ms / frame", justify="right")
    table.add_column("rooms / core", justify="right")
    table.add_column("check")
    enc, room = rooms_per_core(costs["encoders"]), rooms_per_core(costs["room"])
    ratio = costs.paired_ratio()
    table.add_row("(a) OnAir encoders alone (Opus + AAC)", ms(costs["encoders"]), f"{enc:.1f}", "")
    table.add_row(
        "(b) OnAir full room",
        ms(costs["room"]),
        f"{room:.1f}",
        f"{100 * ratio:.1f} % of (a), median of rounds: {_verdict(ratio >= OVERHEAD_TARGET)}"
        " (target >= 85 %)",
    )
    if liquidsoap is not None:
        liq = rooms_per_core(liquidsoap.cpu_per_frame)
        table.add_row(
            f"{liquidsoap.version} room (same mix, Opus + AAC)",
            ms(liquidsoap.cpu_per_frame),
            f"{liq:.1f}",
            f"OnAir / Liquidsoap = {room / liq:.2f}: {_verdict(room >= liq)} (target >= 1); "
            f"it ran at {liquidsoap.speed:.1f}x real time using {100 * liquidsoap.cpu_share:.0f} %"
            f" of the CPU (other work: {100 * liquidsoap.others_share:.0f} %)",
        )
    else:
        table.add_row("Liquidsoap", "-", "-", liquidsoap_note)
    out.print(table)


def print_realtime(
    costs: Costs,
    levels: Sequence[RealtimeResult],
    liquidsoap: LiquidsoapResult | None,
    out: Console,
) -> None:
    table = Table(title="Real time: rooms run together in one process, on the one core")
    table.add_column("measure")
    for level in levels:
        table.add_column(f"OnAir, {level.rooms} rooms, {level.seconds:.0f} s", justify="right")
    if liquidsoap is not None:
        table.add_column(f"Liquidsoap, {liquidsoap.rooms} rooms", justify="right")
    Row = tuple[str, Callable[[RealtimeResult], str], Callable[[LiquidsoapResult], str] | None]
    rows: tuple[Row, ...] = (
        (
            "CPU used, share of the core",
            lambda r: f"{100 * r.cpu_share:.1f} %",
            lambda q: f"{100 * q.cpu_share:.1f} %",
        ),
        (
            "other processes on the same CPU",
            lambda r: f"{100 * r.others_share:.1f} %",
            lambda q: f"{100 * q.others_share:.1f} %",
        ),
        (
            "ms of CPU per room per 20 ms frame",
            lambda r: ms(r.cpu_per_room_frame),
            lambda q: ms(q.cpu_per_frame),
        ),
        (
            "= rooms per core at that cost",
            lambda r: f"{rooms_per_core(r.cpu_per_room_frame):.1f}",
            lambda q: f"{rooms_per_core(q.cpu_per_frame):.1f}",
        ),
        (
            "program made per second, per room",
            lambda r: f"{r.frames * FRAME_S / r.rooms / r.seconds:.3f} s",
            lambda q: f"{q.speed:.3f} s",
        ),
        (
            "late frames (> 20 ms behind schedule)",
            lambda r: f"{100 * r.late_share:.2f} %",
            None,
        ),
        (
            "lateness p99 / max, ms",
            lambda r: f"{ms(r.p99_lateness_s)} / {ms(r.max_lateness_s)}",
            None,
        ),
        ("frames the encoders dropped", lambda r: f"{r.encoder_drops}", None),
        ("encoded samples missing at the end", lambda r: f"{r.encoder_shortfall}", None),
        (
            "deck underruns / voice underruns",
            lambda r: f"{r.deck_underruns} / {r.voice_underruns}",
            None,
        ),
    )
    for label, onair, liq in rows:
        cells = [onair(level) for level in levels]
        if liquidsoap is not None:
            cells.append(liq(liquidsoap) if liq is not None else "-")
        table.add_row(label, *cells)
    out.print(table)
    out.print(
        f"CPU per room per frame: {ms(costs['room'])} ms as fast as possible (b), "
        + ", ".join(
            f"{ms(level.cpu_per_room_frame)} ms in real time with {level.rooms} rooms"
            f" ({100 * (level.cpu_per_room_frame / costs['room'] - 1):+.0f} %)"
            for level in levels
        )
    )
    if liquidsoap is not None:
        onair_cost = levels[-1].cpu_per_room_frame
        out.print(
            f"In real time at {liquidsoap.rooms} rooms, OnAir / Liquidsoap rooms per core = "
            f"{liquidsoap.cpu_per_frame / onair_cost:.2f}"
        )


def summary_line(
    costs: Costs,
    liquidsoap: LiquidsoapResult | None,
    levels: Sequence[RealtimeResult],
    liquidsoap_rt: LiquidsoapResult | None,
) -> str:
    enc, room = rooms_per_core(costs["encoders"]), rooms_per_core(costs["room"])
    parts = [
        f"bench/studio.py {dt.date.today().isoformat()}, {cpu_model()}, one core:",
        f"a full room (queue + voice + Opus + AAC) costs {ms(costs['room'])} ms per 20 ms frame"
        f" = {room:.1f} rooms/core, {100 * costs.paired_ratio():.0f} % of the encoders alone"
        f" ({enc:.1f}; target 85 %);",
        f"deck {ms(costs['deck'])}, voice {ms(costs['voice'])}, mix {ms(costs['mix'])},"
        f" Opus {ms(costs['opus'])}, AAC {ms(costs['aac'])} ms/frame;",
    ]
    if liquidsoap is not None:
        liq = rooms_per_core(liquidsoap.cpu_per_frame)
        parts.append(f"{liquidsoap.version} {liq:.1f} rooms/core (OnAir x{room / liq:.2f});")
    for level in levels:
        parts.append(
            f"real time {level.rooms} rooms: {100 * level.cpu_share:.0f} % CPU"
            f" ({rooms_per_core(level.cpu_per_room_frame):.1f} rooms/core at that cost),"
            f" {100 * level.late_share:.2f} % late frames;"
        )
    if liquidsoap_rt is not None and levels:
        ratio = liquidsoap_rt.cpu_per_frame / levels[-1].cpu_per_room_frame
        parts.append(
            f"Liquidsoap in real time {rooms_per_core(liquidsoap_rt.cpu_per_frame):.1f}"
            f" rooms/core (OnAir x{ratio:.2f})"
        )
    return " ".join(parts).rstrip(";")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Live rooms per core for OnAir's studio (queue + one voice + Opus + AAC), "
        "the CPU cost of each part, and Liquidsoap doing the same room, in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--cpu", type=int, default=None, help="CPU to pin to (default: the least busy)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="program per cost measurement")
    parser.add_argument("--repeats", type=int, default=5, help="cost measurements (median)")
    parser.add_argument("--songs", type=int, default=5, help="short demo songs in the queue")
    parser.add_argument(
        "--voice", type=Path, default=SPEECH, help="speech clip (noise bursts if missing)"
    )
    parser.add_argument(
        "--rt-rooms",
        type=int,
        default=None,
        help="rooms in the real-time check (default: the predicted rooms per core; while more "
        f"than {100 * LATE_LIMIT:.0f} %% of frames are late, up to {MAX_LEVELS} runs, as many as "
        f"fill {100 * STEP_DOWN:.0f} %% of the CPU other work left, at the cost per frame the "
        "last run measured)",
    )
    parser.add_argument("--rt-seconds", type=float, default=20.0, help="real-time run, measured")
    parser.add_argument("--rt-warmup", type=float, default=3.0, help="real-time run, not measured")
    parser.add_argument("--liq-seconds", type=float, default=15.0, help="Liquidsoap, measured")
    parser.add_argument(
        "--skip-realtime", action="store_true", help="no real-time check (OnAir or Liquidsoap)"
    )
    parser.add_argument("--skip-liquidsoap", action="store_true", help="no Liquidsoap at all")
    parser.add_argument(
        "--no-install", action="store_true", help="do not apt-get install a missing liquidsoap"
    )
    args = parser.parse_args(argv)
    if args.seconds < 2 or args.repeats < 1 or args.songs < 2:
        parser.error("need --seconds >= 2, --repeats >= 1 and --songs >= 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cpu = pin_to_one_cpu(args.cpu)
    console.print(f"pinned to CPU {cpu} of {sorted(range(os.cpu_count() or 1))}")
    OUT.mkdir(parents=True, exist_ok=True)
    console.print("preparing songs (made once, cached in bench/out/studio/songs)")
    tracks = prepare_songs(args.songs)
    voice, voice_name = load_voice(args.voice)
    console.print(f"voice: {voice_name}, {voice.shape[0] / SAMPLE_RATE:.1f} s looping")

    costs = measure_costs(tracks, voice, args.seconds, args.repeats)

    liquidsoap: LiquidsoapResult | None = None
    liquidsoap_note = "skipped (--skip-liquidsoap)"
    liquidsoap_binary = ""
    if not args.skip_liquidsoap:
        liquidsoap_binary = ensure_liquidsoap(install=not args.no_install) or ""
        if not liquidsoap_binary:
            liquidsoap_note = "skipped: liquidsoap is not installed and could not be"
        else:
            console.print(f"liquidsoap: one room as fast as it can, {args.liq_seconds:.0f} s")
            try:
                liquidsoap = measure_liquidsoap(
                    liquidsoap_binary,
                    tracks,
                    voice,
                    rooms=1,
                    sync="none",
                    seconds=args.liq_seconds,
                    warmup_program_s=5.0,
                    cpu=cpu,
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                liquidsoap_note = f"failed: {exc}"

    levels: list[RealtimeResult] = []
    liquidsoap_rt: LiquidsoapResult | None = None
    if not args.skip_realtime:
        levels = realtime_levels(args, costs, tracks, voice, cpu)
        if liquidsoap is not None:
            rooms = levels[-1].rooms
            console.print(f"liquidsoap: {rooms} rooms in real time, {args.liq_seconds:.0f} s")
            try:
                liquidsoap_rt = measure_liquidsoap(
                    liquidsoap_binary,
                    tracks,
                    voice,
                    rooms=rooms,
                    sync="cpu",
                    seconds=args.liq_seconds,
                    warmup_program_s=2.0,
                    cpu=cpu,
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                console.print(f"[yellow]liquidsoap in real time failed: {exc}[/]")

    out = Console(width=OUTPUT_WIDTH)
    out.print(
        f"{cpu_model()}, pinned to CPU {cpu} (the machine's other CPUs run other work); Python "
        f"{platform.python_version()}, PyAV {av.__version__}; {len(tracks)} songs of "
        f"{min(t.duration_s for t in tracks):.0f}-{max(t.duration_s for t in tracks):.0f} s, "
        f"{CROSSFADE_S:.0f} s crossfades; voice: {voice_name}; "
        f"{args.seconds:.0f} s of program per measurement x {args.repeats}"
    )
    print_costs(costs, out)
    print_rooms(costs, liquidsoap, liquidsoap_note, out)
    if levels:
        print_realtime(costs, levels, liquidsoap_rt, out)
    print(summary_line(costs, liquidsoap, levels, liquidsoap_rt))
    return 0


def realtime_levels(
    args: argparse.Namespace, costs: Costs, tracks: Sequence[DeckTrack], voice: Mono, cpu: int
) -> list[RealtimeResult]:
    """The predicted number of rooms; while they run late (up to MAX_LEVELS runs), as many as
    would fill STEP_DOWN of what other work left of the CPU, at the cost the last run measured."""
    rooms = args.rt_rooms or max(1, math.floor(rooms_per_core(costs["room"])))
    levels: list[RealtimeResult] = []
    while True:
        console.print(f"real time: {rooms} rooms, {args.rt_seconds:.0f} s measured")
        level = asyncio.run(run_rooms(rooms, args.rt_seconds, args.rt_warmup, tracks, voice, cpu))
        levels.append(level)
        done = level.late_share <= LATE_LIMIT or rooms == 1 or len(levels) == MAX_LEVELS
        if args.rt_rooms is not None or done:
            return levels
        free = 1.0 - level.others_share
        fit = math.floor(STEP_DOWN * free * rooms_per_core(level.cpu_per_room_frame))
        rooms = max(1, min(rooms - 1, fit))


if __name__ == "__main__":
    raise SystemExit(main())
