"""A demo catalog of synthesised songs, so a fresh install has music to play.

Every song is composed from a seed (key, tempo, chord progression, arrangement), performed by
a small synthesiser (drum kit, bass, chords, lead, arpeggio), mastered, encoded to MP3 and tagged
like a commercial release (ID3v2.4 with ISRC and cover art). The same seed gives the same catalog.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import multiprocessing
import os
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import av
import mutagen.id3
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy import fft as sfft
from scipy import signal

__all__ = ["DemoSong", "generate_demo_catalog"]

Samples = npt.NDArray[np.float64]
Stereo = npt.NDArray[np.float32]  # (2, n): left and right
Mono = npt.NDArray[np.float32]

SAMPLE_RATE = 48_000
BIT_RATE = 128_000
# Bump whenever composition or synthesis changes, so existing demo files are re-rendered.
RENDER_VERSION = 1
FINGERPRINT_TAG = "ONAIR_DEMO"
# Encoding dominates the generation time: LAME's "fast" quality 7 encodes 1.7 times faster than
# its default at an SNR within 1 dB on these mixes. Joint stereo stays on: plain left/right
# stereo is faster still, but starves dense mixes of bits at 128 kb/s.
LAME_OPTIONS = (("compression_level", "7"),)
COVER_SIZE = 500
REVERB_DECIMATION = 4
DECODED_PEAK_LIMIT = 0.97


@dataclass(frozen=True)
class DemoSong:
    """One generated song, as written to disk and tagged."""

    path: Path
    title: str
    artists: list[str]  # main artist first, then any featured artist
    album: str
    genres: list[str]
    year: int
    duration_s: float
    isrc: str
    explicit: bool
    bpm: int
    key: str  # "A minor", "F# major"
    track_number: int


def generate_demo_catalog(
    out_dir: Path,
    count: int = 40,
    *,
    seed: int = 1,
    workers: int = 2,
    on_song: Callable[[DemoSong], None] | None = None,
    min_duration_s: float = 60.0,
    max_duration_s: float = 180.0,
) -> list[DemoSong]:
    """Write `count` tagged MP3 songs into `out_dir` and return them in catalog order.

    Songs already on disk with the expected tags are reused, so a rerun costs only tag reads.
    `on_song` is called in this process as each song becomes available (for a progress bar),
    reused songs first. Rendering runs in `workers` spawned processes, so a script calling this
    needs the usual `if __name__ == "__main__":` guard.
    """
    if count < 0 or count > 99_999:
        raise ValueError("count must be between 0 and 99999")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if not 0 < min_duration_s <= max_duration_s:
        raise ValueError("need 0 < min_duration_s <= max_duration_s")
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = _plan_catalog(out_dir, count, seed, min_duration_s, max_duration_s)
    stale = [plan for plan in plans if not _is_current(plan)]
    stale_ids = {plan.index for plan in stale}
    for plan in plans:
        if plan.index not in stale_ids and on_song is not None:
            on_song(plan.song())
    _render_in_pool(stale, workers, on_song)
    return [plan.song() for plan in plans]


def _render_in_pool(
    plans: Sequence[_SongPlan], workers: int, on_song: Callable[[DemoSong], None] | None
) -> None:
    if not plans:
        return
    # Spawned workers start clean: forking a threaded server process can deadlock.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(plans)), mp_context=context)
    try:
        pending: dict[Future[None], _SongPlan] = {
            pool.submit(_write_song, plan): plan for plan in plans
        }
        for done in as_completed(pending):
            done.result()
            if on_song is not None:
                on_song(pending[done].song())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# --------------------------------------------------------------------------------------------
# Music theory


_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def _key_name(tonic: int, minor: bool) -> str:
    if minor:
        return f"{_MINOR_NAMES[tonic]} minor"
    return f"{_MAJOR_NAMES[tonic]} major"


def _id3_key(tonic: int, minor: bool) -> str:
    """The TKEY form from the ID3 specification: at most three characters, "m" for minor."""
    return f"{_MINOR_NAMES[tonic]}m" if minor else _MAJOR_NAMES[tonic]


@dataclass(frozen=True)
class _Key:
    tonic: int
    minor: bool

    @property
    def scale(self) -> tuple[int, ...]:
        return _MINOR_SCALE if self.minor else _MAJOR_SCALE

    def pitch_class(self, degree: int) -> int:
        """Pitch class of a scale degree counted from 0, any octave."""
        return (self.tonic + self.scale[degree % 7]) % 12

    def chord(self, degree: int, *, sevenths: bool, rootless: bool, dominant: bool) -> _Chord:
        """A diatonic chord stacked in thirds; `dominant` raises the third of v in minor."""
        steps = (2, 4, 6, 8) if rootless else (0, 2, 4, 6) if sevenths else (0, 2, 4)
        tones = [self.pitch_class(degree + step) for step in steps]
        if dominant and self.minor and degree % 7 == 4:
            tones = [(pc + 1) % 12 if pc == self.pitch_class(6) else pc for pc in tones]
        return _Chord(root=self.pitch_class(degree), tones=tuple(tones))


@dataclass(frozen=True)
class _Chord:
    root: int
    tones: tuple[int, ...]

    def voicing(self, low: int) -> list[int]:
        """Close position in the octave above `low`, so successive chords move by small steps."""
        return sorted(_place(pc, low) for pc in self.tones)


def _place(pitch_class: int, low: int) -> int:
    return low + (pitch_class - low) % 12


def _hz(midi: float) -> float:
    return 440.0 * math.pow(2.0, (midi - 69.0) / 12.0)


# --------------------------------------------------------------------------------------------
# Genres: each is a tempo range, a groove, a kit, a band and a harmonic vocabulary.


_POP_MAJOR = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (3, 0, 4, 5), (0, 3, 0, 4))
_POP_MINOR = ((0, 5, 2, 6), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 3, 4, 0))
_JAZZ_MAJOR = ((1, 4, 0, 0), (1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4))
_JAZZ_MINOR = ((1, 4, 0, 0), (0, 5, 1, 4), (0, 3, 1, 4))


@dataclass(frozen=True)
class _Genre:
    """A tempo range, a groove, a kit, a band and a harmonic vocabulary."""

    name: str
    tags: tuple[str, ...]  # the genre first, then a broader family some songs also carry
    bpm: tuple[int, int]
    minor_share: float
    # Drum lines: 16 steps a bar (32 for two-bar grooves); X accent, x hit, o ghost, . rest.
    kick: str
    snare: str
    hat: str
    bass: str  # R root, F fifth, O octave, - tie, . rest; "walk" for a walking line
    bass_voice: str
    chord_voice: str
    chord_low: int
    lead_voice: str
    lead_density: float
    lead_low: int
    reverb_s: float
    reverb_mix: float
    open_hat: str = ""
    perc: str = ""
    snare_voice: str = "snare"
    hat_voice: str = "hat"
    open_voice: str = "open_hat"
    perc_voice: str = "shaker"
    crash: bool = False
    swing: tuple[float, float] = (0.0, 0.0)  # delay of off-beats, as a fraction of a step
    swing_eighths: bool = False  # jazz swings 8ths; hip-hop and lo-fi swing 16ths
    humanize_s: float = 0.0
    comp: str = ""  # chord hits; "" sustains each chord
    comp_gate: float = 0.0  # steps; 0 holds until the next hit
    sevenths: bool = False
    rootless: bool = False  # jazz voicings leave the root to the bass and add the ninth
    arp_voice: str = ""
    arp_rate: int = 2  # steps between arpeggio notes
    bars_per_chord: int = 1
    progressions_major: tuple[tuple[int, ...], ...] = _POP_MAJOR
    progressions_minor: tuple[tuple[int, ...], ...] = _POP_MINOR
    echo: bool = False
    lofi: bool = False
    explicit_share: float = 0.04
    artist_styles: tuple[str, ...] = ("band", "person", "duo")


_GENRES: tuple[_Genre, ...] = (
    _Genre(
        name="House",
        tags=("House", "Electronic"),
        bpm=(120, 126),
        minor_share=0.6,
        swing=(0.0, 0.12),
        kick="X...X...X...X...",
        snare="....X.......X...",
        hat="o..oo..oo..oo..o",
        open_hat="..x...x...x...x.",
        perc="..............o.",
        snare_voice="clap",
        crash=True,
        bass="..R...R...O...R.",
        bass_voice="saw_bass",
        comp="...x..x....x..x.",
        comp_gate=1.5,
        chord_voice="stab",
        chord_low=57,
        sevenths=True,
        lead_voice="pluck",
        lead_density=0.5,
        lead_low=69,
        reverb_s=1.4,
        reverb_mix=0.8,
        echo=True,
        artist_styles=("dj", "duo", "person"),
    ),
    _Genre(
        name="Hip-Hop",
        tags=("Hip-Hop", "Rap"),
        bpm=(84, 96),
        minor_share=0.75,
        swing=(0.12, 0.28),
        humanize_s=0.004,
        kick="X.....x...X..x..",
        snare="....X.......X...",
        hat="x.xox.x.x.xox.x.",
        bass="R-----R---R--F--",
        bass_voice="sub",
        comp="X...............",
        chord_voice="epiano",
        chord_low=55,
        sevenths=True,
        lead_voice="bell",
        lead_density=0.35,
        lead_low=72,
        reverb_s=1.0,
        reverb_mix=0.5,
        explicit_share=0.4,
        artist_styles=("mc", "person", "lil"),
    ),
    _Genre(
        name="Jazz",
        tags=("Jazz", "Swing"),
        bpm=(112, 160),
        minor_share=0.35,
        swing=(0.28, 0.36),
        swing_eighths=True,
        humanize_s=0.006,
        kick="o.......o.......",
        snare="..........o...........o.......o.",
        hat="X...x.x.X...x.x.",
        open_hat="....x.......x...",
        snare_voice="brush",
        hat_voice="ride",
        open_voice="pedal",
        bass="walk",
        bass_voice="upright",
        comp="X.....x.............x.....x.....",
        comp_gate=2.5,
        chord_voice="piano",
        chord_low=54,
        sevenths=True,
        rootless=True,
        lead_voice="horn",
        lead_density=0.6,
        lead_low=65,
        progressions_major=_JAZZ_MAJOR,
        progressions_minor=_JAZZ_MINOR,
        reverb_s=1.2,
        reverb_mix=0.6,
        artist_styles=("trio", "person", "quartet"),
    ),
    _Genre(
        name="Ambient",
        tags=("Ambient", "Electronic"),
        bpm=(64, 80),
        minor_share=0.5,
        kick="x.......x.......",
        snare="",
        hat="",
        perc="..o...o...o...o.",
        snare_voice="rim",
        bass="R---------------",
        bass_voice="sub",
        chord_voice="pad",
        chord_low=53,
        lead_voice="bell",
        lead_density=0.25,
        lead_low=72,
        arp_voice="pluck",
        bars_per_chord=2,
        progressions_major=((0, 3, 5, 4), (0, 2, 3, 0), (3, 0, 4, 5)),
        progressions_minor=((0, 5, 3, 4), (0, 6, 5, 6), (0, 3, 5, 6)),
        reverb_s=3.0,
        reverb_mix=1.4,
        echo=True,
        artist_styles=("duo", "person", "band"),
    ),
    _Genre(
        name="Rock",
        tags=("Rock", "Indie"),
        bpm=(100, 140),
        minor_share=0.4,
        humanize_s=0.005,
        kick="X.....x.X.x.....",
        snare="....X.......X...",
        hat="x.x.x.x.x.x.x.x.",
        crash=True,
        bass="R.R.R.R.R.R.F.R.",
        bass_voice="pick_bass",
        comp="x.x.x.x.x.x.x.x.",
        comp_gate=1.6,
        chord_voice="guitar",
        chord_low=45,
        lead_voice="lead",
        lead_density=0.55,
        lead_low=67,
        progressions_major=(*_POP_MAJOR, (0, 3, 4, 4)),
        reverb_s=1.1,
        reverb_mix=0.45,
        artist_styles=("band", "band", "person"),
    ),
    _Genre(
        name="Synthwave",
        tags=("Synthwave", "Electronic"),
        bpm=(84, 112),
        minor_share=0.8,
        kick="X...X...X...X...",
        snare="....X.......X...",
        hat="xoxoxoxoxoxoxoxo",
        open_hat="..x...x...x...x.",
        crash=True,
        bass="R.R.O.R.R.R.O.R.",
        bass_voice="saw_bass",
        chord_voice="pad",
        chord_low=55,
        lead_voice="lead",
        lead_density=0.45,
        lead_low=69,
        arp_voice="pluck",
        arp_rate=1,
        reverb_s=2.0,
        reverb_mix=1.0,
        echo=True,
        artist_styles=("duo", "dj", "band"),
    ),
    _Genre(
        name="Lo-fi",
        tags=("Lo-fi", "Hip-Hop"),
        bpm=(70, 88),
        minor_share=0.5,
        swing=(0.2, 0.34),
        humanize_s=0.006,
        kick="X.......x.X.....",
        snare="....X.......X...",
        hat="x.xox.x.x.xox.xo",
        bass="R-----.-R---F---",
        bass_voice="sub",
        comp="X.........x.....",
        chord_voice="epiano",
        chord_low=53,
        sevenths=True,
        rootless=True,
        lead_voice="flute",
        lead_density=0.3,
        lead_low=69,
        progressions_major=_JAZZ_MAJOR,
        progressions_minor=_JAZZ_MINOR,
        reverb_s=1.3,
        reverb_mix=0.6,
        lofi=True,
        explicit_share=0.0,
        artist_styles=("person", "duo", "band"),
    ),
    _Genre(
        name="Reggae",
        tags=("Reggae", "Dub"),
        bpm=(68, 82),
        minor_share=0.45,
        swing=(0.15, 0.3),
        swing_eighths=True,
        humanize_s=0.005,
        kick="........X.......",
        snare="........X.......",
        hat="x.x.x.x.x.x.x.x.",
        perc="..............o.",
        snare_voice="rim",
        bass="..R-.R..F---R-O.",
        bass_voice="dub_bass",
        comp="....x.......x...",
        comp_gate=0.8,
        chord_voice="skank",
        chord_low=60,
        lead_voice="organ",
        lead_density=0.35,
        lead_low=67,
        progressions_major=((0, 3, 0, 4), (0, 4, 5, 3), (0, 3, 4, 3)),
        progressions_minor=((0, 3, 0, 3), (0, 6, 0, 6), (0, 5, 6, 0)),
        reverb_s=1.6,
        reverb_mix=0.6,
        echo=True,
        artist_styles=("band", "person", "mc"),
    ),
    _Genre(
        name="Drum & Bass",
        tags=("Drum & Bass", "Electronic"),
        bpm=(170, 176),
        minor_share=0.85,
        swing=(0.0, 0.06),
        kick="X.........X.....X.........X.x...",
        snare="....X..o....X..o....X.......X.o.",
        hat="x.x.x.x.x.x.x.x.",
        perc="..o...o...o...o.",
        crash=True,
        bass="R-----------F---",
        bass_voice="reese",
        chord_voice="pad",
        chord_low=57,
        sevenths=True,
        lead_voice="pluck",
        lead_density=0.35,
        lead_low=72,
        bars_per_chord=2,
        reverb_s=2.2,
        reverb_mix=0.9,
        echo=True,
        artist_styles=("dj", "duo", "mc"),
    ),
)


def _genre(name: str) -> _Genre:
    for genre in _GENRES:
        if genre.name == name:
            return genre
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Catalog planning: names, albums, tags. Cheap, runs in the parent.


_ADJECTIVES = (
    "Midnight", "Velvet", "Golden", "Neon", "Silver", "Crimson", "Electric", "Quiet",
    "Distant", "Paper", "Hollow", "Wild", "Lunar", "Amber", "Faded", "Endless", "Northern",
    "Summer", "Winter", "Secret", "Violet", "Glass", "Restless", "Slow", "Burning", "Hidden",
    "Lonely", "Cosmic", "Sleepless", "Blue", "Static", "Tender", "Ivory", "Copper", "Saffron",
    "Evening", "Morning", "Analog", "Magnetic", "Coastal",
)  # fmt: skip
_NOUNS = (
    "Harbour", "Skyline", "Avenue", "Tide", "Echo", "Satellite", "Garden", "Horizon", "Ember",
    "Mirror", "Rain", "Highway", "Signal", "Orchard", "Lighthouse", "Boulevard", "River",
    "Window", "Heart", "Season", "Mountain", "Ocean", "Machine", "Radio", "Dream", "City",
    "Fire", "Shadow", "Island", "Station", "Compass", "Balcony", "Meadow", "Cassette",
    "Planet", "Rooftop", "Motel", "Carousel", "Desert", "Comet",
)  # fmt: skip
_PLURALS = (
    "Lanterns", "Foxes", "Tides", "Echoes", "Satellites", "Comets", "Owls", "Pilots",
    "Strangers", "Dreamers", "Wolves", "Sparrows", "Mirrors", "Engines", "Orchids", "Ghosts",
    "Lovers", "Astronauts", "Tigers", "Machines", "Kites", "Rivers",
)  # fmt: skip
_VERBS = (
    "Chasing", "Leaving", "Dancing in", "Waiting for", "Falling for", "Driving to",
    "Dreaming of", "Running from", "Calling", "Finding",
)  # fmt: skip
_ACCENTED_TITLES = (
    "Café Noir", "Señorita Lumière", "Déjà Vu", "Crème Brûlée", "Mañana", "Fiancée",
    "Naïve Hearts", "Soirée", "São Paulo Nights", "Noël", "Jalapeño Summer", "Piñata",
    "Rosé Evening", "Hôtel Riviera", "Fête Foraine", "Zürich Rain", "Málaga", "Kärlek",
    "Ça Va", "Über Blue", "Año Nuevo", "Éclair",
)  # fmt: skip
_ACCENTED_WORDS = ("Café", "Soirée", "Lumière", "Mañana", "Rosé", "Crème", "Noël", "Éclair")
_FIRST_NAMES = (
    "Maya", "Leo", "Nina", "Jonah", "Ava", "Theo", "Iris", "Felix", "Mateo", "Noor", "Kai",
    "Lena", "Ruby", "Omar", "Clara", "Elias", "June", "Milo", "Sade", "Hugo",
)  # fmt: skip
_LAST_NAMES = (
    "Hart", "Rivers", "Cole", "Lindqvist", "Moreau", "Okafor", "Nakamura", "Quinn", "Reyes",
    "Novak", "Brennan", "Castillo", "Fontaine", "Ashby", "Vance", "Sterling",
)  # fmt: skip
_ACCENTED_FIRST_NAMES = ("Zoë", "José", "Björn", "Chloé", "Søren", "Renée", "Amélie", "Inés")
_ACCENTED_LAST_NAMES = ("Álvarez", "Åkesson", "Dubois-Lefèvre", "Müller", "Ødegaard", "Peña")
_ALBUM_FORMS = (
    "{adj} {plural}", "Songs from the {noun}", "{noun} Sessions", "Live at the {noun}",
    "The {adj} Hours", "{adj} Weather",
)  # fmt: skip


@dataclass(frozen=True)
class _SongPlan:
    """Everything a worker needs to render one song; picklable and deterministic."""

    index: int
    seed: int
    path: Path
    title: str
    artists: tuple[str, ...]
    album: str
    album_artist: str
    genres: tuple[str, ...]
    year: int
    isrc: str
    explicit: bool
    bpm: int
    tonic: int
    minor: bool
    track_number: int
    track_total: int
    duration_s: float

    @property
    def key(self) -> str:
        return _key_name(self.tonic, self.minor)

    @property
    def fingerprint(self) -> str:
        """Identifies the exact render, so a changed plan or generator re-renders the file."""
        fields = {k: v for k, v in vars(self).items() if k != "path"}
        digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:16]
        return f"v{RENDER_VERSION}:{digest}"

    def song(self) -> DemoSong:
        return DemoSong(
            path=self.path,
            title=self.title,
            artists=list(self.artists),
            album=self.album,
            genres=list(self.genres),
            year=self.year,
            duration_s=self.duration_s,
            isrc=self.isrc,
            explicit=self.explicit,
            bpm=self.bpm,
            key=self.key,
            track_number=self.track_number,
        )


@dataclass
class _Namer:
    """Draws plausible names without repeats; lives only while one catalog is planned."""

    rng: random.Random
    used: set[str] = field(default_factory=set)

    def unique(self, draw: Callable[[], str]) -> str:
        for _ in range(50):
            name = draw()
            if name not in self.used:
                self.used.add(name)
                return name
        base = draw()
        number = 2
        while f"{base} {_roman(number)}" in self.used:
            number += 1
        self.used.add(f"{base} {_roman(number)}")
        return f"{base} {_roman(number)}"

    def title(self, accented: bool) -> str:
        pick = self.rng.choice
        if accented:
            if self.rng.random() < 0.7:
                return pick(_ACCENTED_TITLES)
            return f"{pick(_ACCENTED_WORDS)} {pick(_NOUNS)}"
        match self.rng.randrange(6):
            case 0 | 1:
                return f"{pick(_ADJECTIVES)} {pick(_NOUNS)}"
            case 2:
                return f"{pick(_NOUNS)} of {pick(_PLURALS)}"
            case 3:
                return f"{pick(_VERBS)} the {pick(_NOUNS)}"
            case 4:
                return f"{pick(_NOUNS)} {pick(_NOUNS)}"
            case _:
                return pick(_ADJECTIVES)

    def first_name(self, accented: bool) -> str:
        return self.rng.choice(_ACCENTED_FIRST_NAMES if accented else _FIRST_NAMES)

    def person(self, accented: bool) -> str:
        if accented and self.rng.random() < 0.5:
            return f"{self.first_name(False)} {self.rng.choice(_ACCENTED_LAST_NAMES)}"
        return f"{self.first_name(accented)} {self.rng.choice(_LAST_NAMES)}"

    def artist(self, genre: _Genre, accented: bool) -> str:
        pick = self.rng.choice
        match pick(genre.artist_styles):
            case "band":
                if accented:
                    return f"{self.first_name(True)} & the {pick(_PLURALS)}"
                return f"The {pick(_ADJECTIVES)} {pick(_PLURALS)}"
            case "duo":
                words = _ACCENTED_WORDS if accented else _ADJECTIVES
                return f"{pick(words)} {pick(_NOUNS)}"
            case "dj":
                return f"DJ {self.first_name(True) if accented else pick(_NOUNS)}"
            case "mc":
                return f"MC {self.first_name(accented)}"
            case "lil":
                return f"Lil {self.first_name(accented)}"
            case "trio" | "quartet" as group:
                return f"{self.person(accented)} {group.title()}"
            case _:
                return self.person(accented)

    def album(self, title_track: str) -> str:
        if self.rng.random() < 0.35:
            return title_track
        form = self.rng.choice(_ALBUM_FORMS)
        pick = self.rng.choice
        return form.format(adj=pick(_ADJECTIVES), noun=pick(_NOUNS), plural=pick(_PLURALS))


def _roman(number: int) -> str:
    numerals = ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, letters in numerals:
        while number >= value:
            out += letters
            number -= value
    return out


@dataclass(frozen=True)
class _CatalogSpec:
    out_dir: Path
    seed: int
    min_duration_s: float
    max_duration_s: float


def _plan_catalog(
    out_dir: Path, count: int, seed: int, min_s: float, max_s: float
) -> list[_SongPlan]:
    """Albums one after another, so a smaller count yields a prefix of a larger catalog."""
    spec = _CatalogSpec(out_dir, seed, min_s, max_s)
    rng = random.Random(seed)
    namer = _Namer(random.Random(f"names:{seed}"))
    genre_order = list(_GENRES)
    rng.shuffle(genre_order)
    plans: list[_SongPlan] = []
    album_index = 0
    while len(plans) < count:
        genre = genre_order[album_index % len(genre_order)]
        size = min(rng.randint(4, 7), count - len(plans))
        plans += _plan_album(spec, genre, album_index, len(plans), size, rng, namer)
        album_index += 1
    return plans


def _plan_album(
    spec: _CatalogSpec,
    genre: _Genre,
    album_index: int,
    first_index: int,
    size: int,
    rng: random.Random,
    namer: _Namer,
) -> list[_SongPlan]:
    # Every third artist and every sixth title carry accents, so search must fold them.
    artist = namer.unique(partial(namer.artist, genre, album_index % 3 == 1))
    titles = [namer.unique(partial(namer.title, (first_index + i) % 6 == 3)) for i in range(size)]
    album = namer.album(titles[0])
    year = rng.randint(2015, 2026)
    plans = []
    for track, title in enumerate(titles, start=1):
        artists: tuple[str, ...] = (artist,)
        if rng.random() < 0.2:
            artists += (namer.unique(partial(namer.person, rng.random() < 0.3)),)
        index = first_index + track - 1
        bpm = rng.randint(*genre.bpm)
        plans.append(
            _SongPlan(
                index=index,
                seed=spec.seed,
                path=spec.out_dir / f"{index + 1:03d}-{_slug(artist)}-{_slug(title)}.mp3",
                title=title,
                artists=artists,
                album=album,
                album_artist=artist,
                genres=genre.tags if rng.random() < 0.5 else genre.tags[:1],
                year=year,
                # XX is a user-assigned ISO 3166 code no country or ISRC agency will ever use,
                # so demo codes cannot collide with a real recording's ISRC.
                isrc=f"XXOAR26{(spec.seed * 1000 + index + 1) % 100_000:05d}",
                explicit=rng.random() < genre.explicit_share,
                bpm=bpm,
                tonic=rng.randrange(12),
                minor=rng.random() < genre.minor_share,
                track_number=track,
                track_total=size,
                duration_s=_song_length(rng, bpm, spec.min_duration_s, spec.max_duration_s),
            )
        )
    return plans


def _song_length(rng: random.Random, bpm: int, min_s: float, max_s: float) -> float:
    """A whole number of bars when that fits the range, rounded to the sample grid."""
    bar_s = 4 * 60.0 / bpm
    # Most songs are short (a whole arrangement still fits in a minute) and a few run long:
    # encoding is the cost of a fresh install, and it grows with every second of audio.
    target = rng.triangular(min_s, max_s, min_s)
    length = round(target / bar_s) * bar_s
    if not min_s <= length <= max_s:
        length = target
    return round(length * SAMPLE_RATE) / SAMPLE_RATE


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in folded.lower()).split()
    return "-".join(words)[:40] or "untitled"


# --------------------------------------------------------------------------------------------
# Synthesis: every function returns one whole note or hit as a numpy array.


def _time(n: int) -> Samples:
    return np.arange(n, dtype=np.float64) / SAMPLE_RATE


def _adsr(
    gate_s: float, attack_s: float, decay_s: float, sustain: float, release_s: float
) -> Samples:
    t = _time(int((gate_s + release_s) * SAMPLE_RATE))
    rise = np.minimum(t / max(attack_s, 1e-4), 1.0)
    held = rise * (sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack_s, 0.0) / decay_s))
    at_gate = min(gate_s / max(attack_s, 1e-4), 1.0) * (
        sustain + (1.0 - sustain) * math.exp(-max(gate_s - attack_s, 0.0) / decay_s)
    )
    fall = at_gate * np.clip(1.0 - (t - gate_s) / release_s, 0.0, 1.0) ** 2
    return np.where(t < gate_s, held, fall)


def _decay(length_s: float, decay_s: float, attack_s: float = 0.001) -> Samples:
    t = _time(int(length_s * SAMPLE_RATE))
    return np.minimum(t / attack_s, 1.0) * np.exp(-t / decay_s)


def _vibrato_phase(freq: float, n: int, rate_hz: float, depth_semitones: float) -> Samples:
    """Phase in cycles; the vibrato fades in, as a player's does."""
    t = _time(n)
    depth = depth_semitones * np.minimum(t / 0.4, 1.0)
    inst = freq * 2.0 ** (depth * np.sin(2 * np.pi * rate_hz * t) / 12.0)
    return np.cumsum(inst) / SAMPLE_RATE


def _saw(phase: Samples, freq: float) -> Samples:
    """Band-limited (PolyBLEP) sawtooth, so high notes do not alias."""
    dt = freq / SAMPLE_RATE
    t = phase % 1.0
    out = 2.0 * t - 1.0
    head = t < dt
    x = t[head] / dt
    out[head] -= 2.0 * x - x * x - 1.0
    tail = t > 1.0 - dt
    x = (t[tail] - 1.0) / dt
    out[tail] -= x * x + 2.0 * x + 1.0
    return out


def _square(phase: Samples, freq: float) -> Samples:
    return _saw(phase, freq) - _saw(phase + 0.5, freq)


def _sine(phase: Samples) -> Samples:
    return np.sin(2.0 * np.pi * phase)


def _filter(
    x: npt.NDArray[np.floating[Any]], kind: str, cutoff: float | tuple[float, float], order: int = 2
) -> Samples:
    nyquist_safe = 0.45 * SAMPLE_RATE
    edges = np.minimum(np.asarray(cutoff, dtype=np.float64), nyquist_safe)
    sos = signal.butter(order, edges, btype=kind, fs=SAMPLE_RATE, output="sos")
    return np.asarray(signal.sosfilt(sos, x), dtype=np.float64)


def _articulation(voice: str, gate_s: float) -> tuple[float, float, float, float]:
    """Attack, decay, sustain level and release of each instrument, as a player shapes a note."""
    match voice:
        case "sub":
            return 0.006, 0.4, 0.8, 0.08
        case "dub_bass":
            return 0.01, 0.5, 0.85, 0.1
        case "saw_bass":
            return 0.003, 0.18, 0.6, 0.05
        case "pick_bass":
            return 0.002, 0.25, 0.55, 0.05
        case "reese":
            return 0.02, 0.8, 0.9, 0.15
        case "upright" | "pluck":
            return 0.002, 5.0, 1.0, 0.15
        case "pad":
            return min(0.5, 0.4 * gate_s), 1.5, 0.8, 1.2
        case "epiano":
            return 0.002, 1.4, 0.3, 0.3
        case "organ":
            return 0.006, 0.1, 0.9, 0.06
        case "stab":
            return 0.002, 0.2, 0.35, 0.12
        case "guitar":
            return 0.003, 0.35, 0.7, 0.08
        case "skank":
            return 0.002, 0.06, 0.3, 0.05
        case "piano":
            return 0.002, 3.0, 1.0, 0.18
        case "bell":
            return 0.001, 1.2, 0.2, 0.8
        case "flute":
            return 0.06, 0.3, 0.85, 0.12
        case "horn":
            return 0.035, 0.3, 0.8, 0.1
        case _:  # "lead"
            return 0.01, 0.3, 0.8, 0.15


@dataclass
class _Voices:
    """The band for one song: every sound is synthesised once and reused for each repeat."""

    rng: np.random.Generator
    tone: float  # brightness of this mix, varies from song to song
    kick_hz: float
    cache: dict[tuple[str, int, int], Mono] = field(default_factory=dict)

    def sound(self, voice: str, midi: int, gate_s: float) -> Mono:
        key = (voice, midi, round(gate_s * 1000))
        if key not in self.cache:
            if midi == 0:
                hit = self._drum(voice)
                made = hit * _tail_fade(len(hit))
            else:
                made = self._note(voice, midi, key[2] / 1000)
            self.cache[key] = made.astype(np.float32)
        return self.cache[key]

    def _note(self, voice: str, midi: int, gate_s: float) -> Samples:
        envelope = _adsr(gate_s, *_articulation(voice, gate_s))
        return self._timbre(voice, _hz(midi), len(envelope)) * envelope

    def _timbre(self, voice: str, freq: float, n: int) -> Samples:
        phase = _time(n) * freq
        match voice:
            case "sub":
                return _sine(phase) + 0.3 * _sine(2 * phase) + 0.1 * _sine(3 * phase)
            case "dub_bass":
                growl = _filter(_saw(phase, freq), "lowpass", 500)
                return _sine(phase) + 0.4 * _sine(2 * phase) + 0.15 * growl
            case "saw_bass":
                wave = _saw(phase, freq) + 0.5 * _sine(phase)
                return 1.8 * _filter(wave, "lowpass", 700 * self.tone)
            case "pick_bass":
                wave = _saw(phase, freq) + 0.4 * _square(phase, freq)
                return _filter(wave, "lowpass", 1100 * self.tone)
            case "reese":
                detuned = _saw(phase * 0.995, freq) + _saw(phase * 1.005, freq)
                return _filter(detuned, "lowpass", 600 * self.tone, order=4) + 0.8 * _sine(phase)
            case "upright":
                return _partials(phase, freq, count=5, rolloff=1.3, damping=(1.5, 2.5))
            case "piano":
                return _partials(
                    phase, freq, count=8, rolloff=1.0, damping=(0.8, 0.9), stiffness=4e-4
                )
            case "pad":
                return self._pad(phase, freq)
            case "organ":
                drawbars = ((0.5, 0.5), (1.0, 1.0), (2.0, 0.6), (3.0, 0.35), (4.0, 0.2))
                return np.asarray(sum(level * _sine(phase * ratio) for ratio, level in drawbars))
            case "guitar":
                return self._power_chord(phase, freq)
            case _:
                return self._keys_and_leads(voice, phase, freq)

    def _keys_and_leads(self, voice: str, phase: Samples, freq: float) -> Samples:
        t = _time(len(phase))
        match voice:
            case "epiano":
                # FM with a fading index: the bright tine strike settles into a soft tone.
                index = 1.1 * np.exp(-t / 0.35) + 0.15
                return np.sin(2 * np.pi * phase + index * _sine(phase))
            case "bell":
                return np.sin(2 * np.pi * phase + 2.2 * np.exp(-t / 0.25) * _sine(3.5 * phase))
            case "stab":
                wave = _saw(phase, freq) + 0.6 * _square(phase * 1.003, freq)
                return _filter(wave, "lowpass", 2600 * self.tone)
            case "skank":
                wave = _square(phase, freq) + _saw(phase, freq)
                return 1.8 * _filter(wave, "bandpass", (500, 3500 * self.tone))
            case "pluck":
                raw = _saw(phase, freq)
                bright = _filter(raw, "lowpass", 5000 * self.tone) * np.exp(-t / 0.09)
                return bright + _filter(raw, "lowpass", 1400 * self.tone) * np.exp(-t / 0.6)
            case _:
                return self._breathed(voice, freq, len(phase))

    def _breathed(self, voice: str, freq: float, n: int) -> Samples:
        """Sustained melody voices, with the vibrato a player adds to a held note."""
        match voice:
            case "flute":
                phase = _vibrato_phase(freq, n, 5.0, 0.12)
                breath = _filter(self.rng.standard_normal(n), "bandpass", (freq * 1.5, freq * 4))
                return (
                    _sine(phase) + 0.2 * _sine(2 * phase) + 0.08 * _sine(3 * phase) + 0.15 * breath
                )
            case "horn":
                phase = _vibrato_phase(freq, n, 5.2, 0.15)
                return _filter(_saw(phase, freq), "lowpass", min(6 * freq, 2400) * self.tone)
            case _:  # "lead"
                phase = _vibrato_phase(freq, n, 5.5, 0.18)
                wave = _square(phase, freq) + 0.5 * _saw(phase * 1.004, freq)
                return _filter(wave, "lowpass", 3200 * self.tone)

    def _pad(self, phase: Samples, freq: float) -> Samples:
        """Three detuned saws through a low-pass: the classic string-machine ensemble."""
        voices = (
            _saw(phase * 0.997, freq) + _saw(phase + 0.31, freq) + _saw(phase * 1.003 + 0.67, freq)
        )
        return _filter(voices / 3.0, "lowpass", 1800 * self.tone)

    def _power_chord(self, phase: Samples, freq: float) -> Samples:
        """Root, fifth and octave driven through a clipper, the way an amp makes them fuse."""
        strings = sum(_saw(phase * ratio, freq * ratio) for ratio in (1.0, 1.498, 2.0, 1.004))
        return _filter(np.tanh(3.5 * np.asarray(strings)), "lowpass", 3200 * self.tone)

    def _noise(self, length_s: float) -> Samples:
        return self.rng.standard_normal(int(length_s * SAMPLE_RATE))

    def _drum(self, voice: str) -> Samples:
        match voice:
            case "kick":
                return self._kick()
            case "snare":
                body = _sine(_time(int(0.3 * SAMPLE_RATE)) * 185.0) * _decay(0.3, 0.05) * 0.6
                rattle = _filter(self._noise(0.3), "bandpass", (1200, 9000 * self.tone))
                return body + rattle * _decay(0.3, 0.07)
            case "clap":
                return self._clap()
            case "rim":
                click = _filter(self._noise(0.08), "bandpass", (1500, 5000)) * _decay(0.08, 0.008)
                return 2.0 * click + 1.2 * _sine(_time(len(click)) * 1650.0) * _decay(0.08, 0.012)
            case "brush":
                swish = _filter(self._noise(0.35), "bandpass", (700, 6000))
                return 0.8 * swish * _decay(0.35, 0.12, attack_s=0.015)
            case "hat" | "pedal":
                return _filter(self._noise(0.15), "highpass", 7000, order=4) * _decay(0.15, 0.035)
            case "open_hat":
                return _filter(self._noise(0.6), "highpass", 6500, order=4) * _decay(0.6, 0.2)
            case "shaker":
                noise = _filter(self._noise(0.15), "bandpass", (4000, 11000))
                return 1.5 * noise * _decay(0.15, 0.045, attack_s=0.01)
            case "ride":
                return 0.5 * self._cymbal(1.0, 0.5)
            case "crash":
                return self._cymbal(2.5, 1.1)
            case _:
                raise ValueError(f"unknown drum {voice}")

    def _kick(self) -> Samples:
        """A sine whose pitch drops fast from a punchy attack to the tuned body."""
        t = _time(int(0.5 * SAMPLE_RATE))
        freq = self.kick_hz + (4.0 * self.kick_hz) * np.exp(-t / 0.025)
        body = np.sin(2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * np.exp(-t / 0.2)
        click = _filter(self._noise(0.5), "highpass", 3000) * np.exp(-t / 0.002) * 0.3
        return body + click

    def _clap(self) -> Samples:
        """Several hands a few milliseconds apart, then the room."""
        t = _time(int(0.4 * SAMPLE_RATE))
        hands = sum(np.exp(-np.maximum(t - d, 0) / 0.004) * (t >= d) for d in (0.0, 0.011, 0.022))
        room = 0.5 * np.exp(-np.maximum(t - 0.03, 0) / 0.11) * (t >= 0.03)
        noise = _filter(self._noise(0.4), "bandpass", (900, 5000))
        return 1.6 * noise * (np.asarray(hands) + room)

    def _cymbal(self, length_s: float, decay_s: float) -> Samples:
        t = _time(int(length_s * SAMPLE_RATE))
        # Square partials at inharmonic ratios give the metallic shimmer of a bronze plate.
        metal = sum(_square(t * f, f) for f in (317.0, 469.0, 582.0, 761.0, 923.0, 1207.0))
        wash = np.asarray(metal) + 2.0 * self._noise(length_s)[: len(t)]
        return _filter(wash, "highpass", 5000) * np.exp(-t / decay_s) * 0.4


def _partials(
    phase: Samples,
    freq: float,
    count: int,
    rolloff: float,
    damping: tuple[float, float],
    stiffness: float = 0.0,
) -> Samples:
    """A struck or plucked string: additive partials, the higher ones dying faster."""
    t = _time(len(phase))
    wave = np.zeros(len(phase))
    for k in range(1, count + 1):
        ratio = k * math.sqrt(1.0 + stiffness * k * k)
        if ratio * freq > 0.45 * SAMPLE_RATE:
            break
        wave += _sine(phase * ratio) * np.exp(-t * (damping[0] + damping[1] * k)) / k**rolloff
    return wave


def _tail_fade(n: int) -> Samples:
    """Drum samples are cut short of silence; a quick fade keeps the cut from clicking."""
    fade = np.ones(n)
    tail = min(n, int(0.02 * SAMPLE_RATE))
    fade[n - tail :] = np.linspace(1.0, 0.0, tail)
    return fade


# --------------------------------------------------------------------------------------------
# Composition: a song is a list of events on a 16th-note grid.


@dataclass(frozen=True)
class _Event:
    layer: str
    voice: str
    bar: int
    step: float  # 16ths from the start of `bar`
    length: float  # in 16ths
    midi: int  # 0 for drums
    velocity: float
    pan: float


@dataclass(frozen=True)
class _Section:
    name: str  # intro, verse, chorus, break, outro
    start: int
    bars: int


def _layers(section: str) -> frozenset[str]:
    match section:
        case "intro":
            return frozenset({"chords", "hat", "perc", "arp"})
        case "verse":
            return frozenset({"kick", "snare", "hat", "perc", "bass", "chords", "arp"})
        case "chorus":
            return frozenset(
                {
                    "kick",
                    "snare",
                    "hat",
                    "open_hat",
                    "perc",
                    "bass",
                    "chords",
                    "lead",
                    "arp",
                    "crash",
                }
            )
        case "break":
            return frozenset({"chords", "lead", "perc", "arp"})
        case _:  # outro
            return frozenset({"kick", "hat", "perc", "bass", "chords", "arp", "crash"})


def _arrangement(total_bars: int, phrase: int) -> list[_Section]:
    """Intro, verses and choruses (with a breakdown in longer songs), then an outro to fade on."""
    roomy = total_bars >= 6 * phrase
    edge = phrase if roomy else max(1, total_bars // 6)
    body = 2 * phrase if roomy else max(1, (total_bars - 2 * edge) // 2)
    form = (
        ("verse", "chorus", "verse", "chorus", "break", "chorus") if roomy else ("verse", "chorus")
    )
    sections = [_Section("intro", 0, min(edge, total_bars))]
    bar = sections[0].bars
    outro_start = max(bar, total_bars - edge)
    while bar < outro_start:
        name = form[(len(sections) - 1) % len(form)]
        length = min(max(1, body // 2) if name == "break" else body, outro_start - bar)
        sections.append(_Section(name, bar, length))
        bar += length
    if bar < total_bars:
        sections.append(_Section("outro", bar, total_bars - bar))
    return sections


@dataclass(frozen=True)
class _Harmony:
    key: _Key
    verse: tuple[_Chord, ...]
    chorus: tuple[_Chord, ...]
    bars_per_chord: int

    def chord(self, section: str, bar_in_section: int) -> _Chord:
        progression = self.chorus if section in ("chorus", "break") else self.verse
        return progression[(bar_in_section // self.bars_per_chord) % len(progression)]


def _harmony(genre: _Genre, key: _Key, rng: np.random.Generator) -> _Harmony:
    choices = genre.progressions_minor if key.minor else genre.progressions_major
    verse, chorus = (
        choices[int(i)] for i in rng.choice(len(choices), size=2, replace=len(choices) < 2)
    )

    def chords(degrees: tuple[int, ...]) -> tuple[_Chord, ...]:
        return tuple(
            key.chord(
                d, sevenths=genre.sevenths, rootless=genre.rootless, dominant=genre.name == "Jazz"
            )
            for d in degrees
        )

    return _Harmony(key, chords(verse), chords(chorus), genre.bars_per_chord)


def _velocity(mark: str) -> float:
    match mark:
        case "X":
            return 1.0
        case "x" | "R" | "F" | "O":
            return 0.75
        case "o":
            return 0.4
        case _:
            return 0.0


def _bar_of(pattern: str, bar: int) -> str:
    """One bar of a pattern that may span several bars."""
    bars = max(1, len(pattern) // 16)
    offset = (bar % bars) * 16
    return pattern[offset : offset + 16]


def _drum_bar(
    genre: _Genre, layers: frozenset[str], bar: int, fill: bool, crash: bool
) -> Iterator[_Event]:
    lines = (
        ("kick", genre.kick, "kick", 0.0),
        ("snare", genre.snare, genre.snare_voice, 0.05),
        ("hat", genre.hat, genre.hat_voice, 0.3),
        ("open_hat", genre.open_hat, genre.open_voice, -0.25),
        ("perc", genre.perc, genre.perc_voice, -0.4),
    )
    for layer, pattern, voice, pan in lines:
        if layer not in layers or not pattern:
            continue
        marks = _bar_of(pattern, bar)
        if fill and layer == "snare":
            marks = marks[:12] + "oxxX"
        for step, mark in enumerate(marks):
            if _velocity(mark) > 0:
                yield _Event(layer, voice, bar, step, 1, 0, _velocity(mark), pan)
    if crash and genre.crash and "crash" in layers:
        yield _Event("crash", "crash", bar, 0, 1, 0, 1.0, -0.2)


def _bass_bar(
    genre: _Genre, chord: _Chord, next_chord: _Chord, bar: int, rng: np.random.Generator
) -> Iterator[_Event]:
    root = _place(chord.root, 33 if genre.bass_voice != "upright" else 36)
    if genre.bass == "walk":
        yield from _walking_bar(chord, next_chord, root, bar, rng)
        return
    marks = _bar_of(genre.bass, bar)
    for step, mark in enumerate(marks):
        if mark not in "RFO":
            continue
        tie = len(marks[step + 1 :]) - len(marks[step + 1 :].lstrip("-"))
        interval = {"R": 0, "F": 7, "O": 12}[mark]
        yield _Event(
            "bass", genre.bass_voice, bar, step, 0.85 + tie, root + interval, _velocity(mark), 0.0
        )


def _walking_bar(
    chord: _Chord, next_chord: _Chord, root: int, bar: int, rng: np.random.Generator
) -> Iterator[_Event]:
    """Quarter notes: root, two chord tones, then a chromatic step into the next root."""
    tones = [_place(pc, root) for pc in (chord.root, *chord.tones)]
    target = _place(next_chord.root, 36)
    line = [
        root,
        int(rng.choice(tones[1:])),
        int(rng.choice(tones[1:])),
        target + int(rng.choice([-1, 1])),
    ]
    for beat, midi in enumerate(line):
        yield _Event("bass", "upright", bar, beat * 4, 3.6, midi, 0.8 if beat == 0 else 0.65, 0.0)


def _comp_bar(genre: _Genre, chord: _Chord, bar: int, bar_in_section: int) -> Iterator[_Event]:
    notes = chord.voicing(genre.chord_low)
    if genre.chord_voice == "guitar":
        notes = [_place(chord.root, genre.chord_low)]
    gain = 1.0 / math.sqrt(len(notes))
    if not genre.comp:
        if bar_in_section % genre.bars_per_chord:
            return
        for midi in notes:
            yield _Event(
                "chords", genre.chord_voice, bar, 0, 16 * genre.bars_per_chord - 1, midi, gain, 0.0
            )
        return
    marks = _bar_of(genre.comp, bar)
    hits = [step for step, mark in enumerate(marks) if _velocity(mark) > 0]
    for i, step in enumerate(hits):
        end = hits[i + 1] if i + 1 < len(hits) else 16
        length = genre.comp_gate or (end - step - 0.3)
        for midi in notes:
            yield _Event(
                "chords",
                genre.chord_voice,
                bar,
                step,
                length,
                midi,
                gain * _velocity(marks[step]),
                0.0,
            )


@dataclass(frozen=True)
class _Phrase:
    """A melody over one cycle of the progression, as (step, length, midi) from its start."""

    notes: tuple[tuple[int, int, int], ...]
    bars: int


def _melody(genre: _Genre, harmony: _Harmony, rng: np.random.Generator) -> _Phrase:
    """A two-bar rhythm repeated over the cycle; the pitch walks the scale, chord tones on beats."""
    bars = len(harmony.chorus) * harmony.bars_per_chord
    rhythm = _rhythm(genre.lead_density, rng)
    scale = [
        m
        for m in range(genre.lead_low - 2, genre.lead_low + 15)
        if (m - harmony.key.tonic) % 12 in harmony.key.scale
    ]
    position = len(scale) // 3
    notes = []
    for start_bar in range(0, bars, 2):
        for step, length in rhythm:
            bar = start_bar + step // 16
            if bar >= bars:
                break
            position = int(np.clip(position + rng.choice([-2, -1, -1, 1, 1, 2]), 0, len(scale) - 1))
            midi = scale[position]
            if step % 8 == 0:
                midi = _nearest_tone(midi, harmony.chord("chorus", bar))
            notes.append((start_bar * 16 + step, length, midi))
    return _Phrase(tuple(notes), bars)


def _rhythm(density: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    weights = np.tile([1.0, 0.15, 0.45, 0.2, 0.8, 0.15, 0.45, 0.2], 4) * density
    weights[0] = 1.0
    onsets = [step for step in range(32) if rng.random() < weights[step]]
    ends = [*onsets[1:], 32]
    return [(s, min(e - s, 6)) for s, e in zip(onsets, ends, strict=True)]


def _nearest_tone(midi: int, chord: _Chord) -> int:
    candidates = [m for m in range(midi - 3, midi + 4) if m % 12 in (chord.root, *chord.tones)]
    return min(candidates, key=lambda m: abs(m - midi)) if candidates else midi


def _lead_bar(
    genre: _Genre, phrase: _Phrase, bar: int, bar_in_section: int, soft: bool
) -> Iterator[_Event]:
    cycle_bar = bar_in_section % phrase.bars
    for step, length, midi in phrase.notes:
        if step // 16 == cycle_bar:
            shift = -12 if soft else 0
            yield _Event(
                "lead",
                genre.lead_voice,
                bar,
                step % 16,
                length * 0.9,
                midi + shift,
                0.6 if soft else 0.85,
                0.1,
            )


def _arp_bar(genre: _Genre, chord: _Chord, bar: int) -> Iterator[_Event]:
    tones = chord.voicing(genre.chord_low + 12)
    climb = [*tones, *(t + 12 for t in tones)]
    pattern = [*climb, *reversed(climb[1:-1])]
    for i, step in enumerate(range(0, 16, genre.arp_rate)):
        pan = -0.45 if i % 2 else 0.45
        yield _Event(
            "arp",
            genre.arp_voice,
            bar,
            step,
            genre.arp_rate * 0.8,
            pattern[i % len(pattern)],
            0.6,
            pan,
        )


def _compose(genre: _Genre, key: _Key, total_bars: int, rng: np.random.Generator) -> list[_Event]:
    harmony = _harmony(genre, key, rng)
    phrase = _melody(genre, harmony, rng)
    events: list[_Event] = []
    sections = _arrangement(total_bars, phrase=4 * genre.bars_per_chord)
    for i, section in enumerate(sections):
        next_name = sections[i + 1].name if i + 1 < len(sections) else ""
        layers = _layers(section.name)
        for offset in range(section.bars):
            bar = section.start + offset
            chord = harmony.chord(section.name, offset)
            last = offset == section.bars - 1
            events += _drum_bar(
                genre, layers, bar, fill=last and next_name == "chorus", crash=offset == 0
            )
            events += _comp_bar(genre, chord, bar, offset)
            if "bass" in layers:
                following = harmony.chord(
                    next_name if last else section.name, 0 if last else offset + 1
                )
                events += _bass_bar(genre, chord, following, bar, rng)
            if "lead" in layers:
                events += _lead_bar(genre, phrase, bar, offset, soft=section.name == "break")
            if "arp" in layers and genre.arp_voice:
                events += _arp_bar(genre, chord, bar)
    return events


# --------------------------------------------------------------------------------------------
# Performance and mastering


@dataclass(frozen=True)
class _Channel:
    gain: float
    reverb: float
    echo: float


def _channel(layer: str) -> _Channel:
    match layer:
        case "kick":
            return _Channel(0.95, 0.0, 0.0)
        case "snare":
            return _Channel(0.85, 0.3, 0.0)
        case "hat":
            return _Channel(0.16, 0.08, 0.0)
        case "open_hat":
            return _Channel(0.12, 0.1, 0.0)
        case "perc":
            return _Channel(0.3, 0.15, 0.0)
        case "crash":
            return _Channel(0.22, 0.2, 0.0)
        case "bass":
            return _Channel(0.45, 0.0, 0.0)
        case "chords":
            return _Channel(0.32, 0.35, 0.05)
        case "lead":
            return _Channel(0.4, 0.3, 0.3)
        case _:  # arp
            return _Channel(0.14, 0.35, 0.45)


@dataclass
class _Mix:
    """The mix bus with its reverb and echo sends, for one song."""

    main: Stereo
    reverb: Mono
    echo: Mono

    @classmethod
    def silent(cls, n: int) -> _Mix:
        return cls(np.zeros((2, n), np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32))

    def add(self, sound: Mono, start: int, gain: float, pan: float, channel: _Channel) -> None:
        end = min(start + len(sound), self.main.shape[1])
        if start >= end:
            return
        part = sound[: end - start] * np.float32(gain)
        angle = (pan + 1.0) * math.pi / 4.0
        self.main[0, start:end] += part * math.cos(angle)
        self.main[1, start:end] += part * math.sin(angle)
        if channel.reverb:
            self.reverb[start:end] += part * channel.reverb
        if channel.echo:
            self.echo[start:end] += part * channel.echo


@dataclass(frozen=True)
class _Grid:
    bpm: int
    swing: float
    swing_eighths: bool

    @property
    def step_s(self) -> float:
        return 15.0 / self.bpm

    def time(self, bar: int, step: float) -> float:
        """Seconds from the song start; swung off-beats land late, as players place them."""
        whole = int(step)
        if self.swing_eighths:
            lag = 2 * self.swing if whole % 4 == 2 else self.swing if whole % 2 else 0.0
        else:
            lag = self.swing if whole % 2 else 0.0
        return (bar * 16 + step + lag) * self.step_s


def _perform(
    events: list[_Event], genre: _Genre, grid: _Grid, n: int, rng: np.random.Generator
) -> _Mix:
    voices = _Voices(rng, tone=float(rng.uniform(0.8, 1.25)), kick_hz=float(rng.uniform(44, 56)))
    mix = _Mix.silent(n)
    jitter = (
        rng.normal(0.0, genre.humanize_s, len(events))
        if genre.humanize_s
        else np.zeros(len(events))
    )
    accents = rng.uniform(0.85, 1.0, len(events))
    for event, late, accent in zip(events, jitter, accents, strict=True):
        start_s = grid.time(event.bar, event.step) + float(late)
        gate_s = grid.time(event.bar, event.step + event.length) - grid.time(event.bar, event.step)
        sound = voices.sound(event.voice, event.midi, max(gate_s, 0.02))
        channel = _channel(event.layer)
        start = max(0, round(start_s * SAMPLE_RATE))
        mix.add(sound, start, channel.gain * event.velocity * float(accent), event.pan, channel)
    return mix


def _impulse_response(length_s: float, rate: int, rng: np.random.Generator) -> Samples:
    """Decaying stereo noise, darkened: a plausible room, decorrelated left and right."""
    t = np.arange(int(length_s * rate)) / rate
    tail = rng.standard_normal((2, len(t))) * np.exp(-6.9 * t / length_s)
    tail = signal.lfilter([0.35], [1.0, -0.65], tail, axis=1)
    tail[:, : int(0.015 * rate)] = 0.0  # pre-delay keeps the dry attack clear of the wash
    return np.asarray(tail / np.sqrt(np.sum(tail**2) / 2.0), dtype=np.float64)


def _reverb(send: Mono, length_s: float, rng: np.random.Generator) -> Stereo:
    """Convolution at a quarter of the sample rate: a diffuse tail holds little above 6 kHz,
    and quarter-length FFTs keep the reverb from costing as much as the rest of the mix."""
    factor = REVERB_DECIMATION
    whole = len(send) // factor * factor
    band = send[:whole].reshape(-1, factor).mean(axis=1)
    ir = _impulse_response(length_s, SAMPLE_RATE // factor, rng).astype(np.float32)
    size = sfft.next_fast_len(len(band) + ir.shape[1] - 1, real=True)
    wet = sfft.irfft(sfft.rfft(band, size) * sfft.rfft(ir, size, axis=1), size, axis=1)
    out = np.zeros((2, len(send)), np.float32)
    out[:, :whole] = _upsample(np.asarray(wet[:, : len(band)], dtype=np.float32), factor)
    return out


def _upsample(low: Stereo, factor: int) -> Stereo:
    """Linear interpolation: smooth enough for a diffuse tail, and a few passes over memory."""
    following = np.concatenate([low[:, 1:], low[:, -1:]], axis=1)
    out = np.empty((2, low.shape[1], factor), np.float32)
    for k in range(factor):
        out[:, :, k] = low + (following - low) * np.float32(k / factor)
    return out.reshape(2, -1)


def _echo(send: Mono, delay_s: float) -> Stereo:
    """A darkened ping-pong delay, each repeat quieter and on the other side."""
    dark = _filter(send, "lowpass", 3500).astype(np.float32)
    out = np.zeros((2, len(send)), np.float32)
    delay = int(delay_s * SAMPLE_RATE)
    for repeat in range(1, 6):
        shift = delay * repeat
        if shift >= len(send):
            break
        out[repeat % 2, shift:] += dark[:-shift] * np.float32(0.5**repeat)
    return out


def _master(mix: _Mix, genre: _Genre, grid: _Grid, rng: np.random.Generator) -> Stereo:
    """Sum the returns, saturate by a different amount per song (so loudness varies the way
    commercial masters do), fade, and set the peak. In place: the buffers are large."""
    program = mix.main
    program += _reverb(mix.reverb, genre.reverb_s, rng) * np.float32(genre.reverb_mix)
    if genre.echo:
        program += _echo(mix.echo, 3 * grid.step_s)
    if genre.lofi:
        program = _wear(program, rng)
    drive = float(rng.uniform(1.0, 3.0))
    program *= np.float32(drive / _peak(program))
    np.tanh(program, out=program)
    _fade(program)
    peak_db = float(rng.uniform(-2.0, -1.2))
    program *= np.float32(10 ** (peak_db / 20) / _peak(program))
    return program


def _peak(program: Stereo) -> float:
    return max(float(program.max()), -float(program.min()), 1e-9)


def _wear(program: Stereo, rng: np.random.Generator) -> Stereo:
    """Dull top end, vinyl crackle and tape hiss: what makes lo-fi sound lived-in."""
    n = program.shape[1]
    dull = _filter(program, "lowpass", 4500)
    crackle = np.zeros(n)
    pops = rng.integers(0, n, size=max(1, n * 3 // SAMPLE_RATE))
    crackle[pops] = rng.uniform(-1.0, 1.0, len(pops)) * 0.2
    noise = _filter(crackle + rng.standard_normal(n) * 0.004, "highpass", 1500)
    return np.asarray(dull + noise * float(np.max(np.abs(dull))) * 0.5, dtype=np.float32)


def _fade(program: Stereo) -> None:
    """A click-free start and a radio-style fade over the last few bars."""
    n = program.shape[1]
    head = min(n, int(0.005 * SAMPLE_RATE))
    program[:, :head] *= np.linspace(0.0, 1.0, head, dtype=np.float32)
    tail = min(n, int(min(10.0, max(0.5, 0.12 * n / SAMPLE_RATE)) * SAMPLE_RATE))
    program[:, n - tail :] *= np.linspace(1.0, 0.0, tail, dtype=np.float32) ** 2


def _render(plan: _SongPlan) -> Stereo:
    genre = _genre(plan.genres[0])
    rng = np.random.default_rng([plan.seed, plan.index, RENDER_VERSION])
    grid = _Grid(plan.bpm, float(rng.uniform(*genre.swing)), genre.swing_eighths)
    n = round(plan.duration_s * SAMPLE_RATE)
    total_bars = math.ceil(plan.duration_s / (16 * grid.step_s))
    events = _compose(genre, _Key(plan.tonic, plan.minor), total_bars, rng)
    return _master(_perform(events, genre, grid, n, rng), genre, grid, rng)


# --------------------------------------------------------------------------------------------
# Files: encoding, cover art, tags


def _write_song(plan: _SongPlan) -> None:
    """Runs in a worker process. Writes beside the target and renames, so no half file remains."""
    partial = plan.path.with_name(plan.path.name + ".part")
    _encode_below_peak(_render(plan), partial)
    _write_tags(partial, plan, _cover_png(plan))
    os.replace(partial, plan.path)


def _encode_below_peak(audio: Stereo, path: Path) -> None:
    """Encode, then check the decoded peak: MP3 coding noise can lift peaks by 1-2 dB."""
    for _ in range(4):
        _encode_mp3(audio, path)
        overshoot = _decoded_peak(path) / DECODED_PEAK_LIMIT
        if overshoot <= 1.0:
            return
        # Coding noise does not scale exactly with level, so aim a little under the limit.
        audio = audio / np.float32(overshoot * 1.02)


def _decoded_peak(path: Path) -> float:
    """The peak a player will see after decoding."""
    peak = 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            peak = max(peak, float(np.max(np.abs(frame.to_ndarray()))))
    return peak


def _encode_mp3(audio: Stereo, path: Path) -> None:
    chunk = 1152 * 64
    # mutagen writes the only ID3 tag, so the muxer is told not to write its own.
    with av.open(str(path), "w", format="mp3", options={"id3v2_version": "0"}) as container:
        stream = container.add_stream(
            "libmp3lame",
            rate=SAMPLE_RATE,
            layout="stereo",
            bit_rate=BIT_RATE,
            options=dict(LAME_OPTIONS),
        )
        stream.codec_context.format = "fltp"
        for start in range(0, audio.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[:, start : start + chunk]),
                format="fltp",
                layout="stereo",
            )
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _write_tags(path: Path, plan: _SongPlan, cover: bytes) -> None:
    id3 = _mutagen_id3()
    tags = id3.ID3()
    text_frames = (
        (id3.TIT2, [plan.title]),
        (id3.TPE1, list(plan.artists)),  # several values: ID3v2.4 separates them with NUL
        (id3.TPE2, [plan.album_artist]),
        (id3.TALB, [plan.album]),
        (id3.TCON, list(plan.genres)),
        (id3.TDRC, [str(plan.year)]),
        (id3.TSRC, [plan.isrc]),
        (id3.TRCK, [f"{plan.track_number}/{plan.track_total}"]),
        (id3.TBPM, [str(plan.bpm)]),
        (id3.TKEY, [_id3_key(plan.tonic, plan.minor)]),
    )
    for frame, text in text_frames:
        tags.add(frame(encoding=3, text=text))
    tags.add(id3.TXXX(encoding=3, desc="ITUNESADVISORY", text=["1" if plan.explicit else "0"]))
    tags.add(id3.TXXX(encoding=3, desc=FINGERPRINT_TAG, text=[plan.fingerprint]))
    tags.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=cover))
    tags.save(str(path), v2_version=4)


def _is_current(plan: _SongPlan) -> bool:
    if not plan.path.is_file():
        return False
    id3 = _mutagen_id3()
    try:
        tags = id3.ID3(str(plan.path))
    except (id3.ID3NoHeaderError, OSError, ValueError):
        return False
    fingerprint = tags.get(f"TXXX:{FINGERPRINT_TAG}")
    title = tags.get("TIT2")
    return (
        fingerprint is not None
        and list(fingerprint.text) == [plan.fingerprint]
        and title is not None
        and list(title.text) == [plan.title]
        and bool(tags.getall("APIC"))
    )


def _mutagen_id3() -> Any:
    """mutagen ships untyped functions; keep the dynamic calls in one visible place."""
    return cast(Any, mutagen.id3)


def _cover_png(plan: _SongPlan) -> bytes:
    """Album art: a gradient, a few shapes and the album's name, all drawn from the seed."""
    rng = random.Random(f"cover:{plan.seed}:{plan.album_artist}:{plan.album}")
    hue = rng.random()
    first = _rgb(hue, 0.65, 0.9)
    second = _rgb((hue + rng.uniform(0.15, 0.45)) % 1.0, 0.8, 0.35)
    image = Image.fromarray(_gradient(first, second, rng.uniform(0, math.pi)), "RGB")
    draw = ImageDraw.Draw(image, "RGBA")
    _draw_shapes(draw, rng, _rgb((hue + 0.5) % 1.0, 0.5, 1.0))
    _draw_caption(draw, plan.album, plan.album_artist)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _gradient(
    first: tuple[int, int, int], second: tuple[int, int, int], angle: float
) -> npt.NDArray[np.uint8]:
    axis = np.linspace(0.0, 1.0, COVER_SIZE)
    ramp = (np.cos(angle) * axis[np.newaxis, :] + np.sin(angle) * axis[:, np.newaxis]) / (
        abs(np.cos(angle)) + abs(np.sin(angle))
    )
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    colours = (
        np.asarray(first) * (1.0 - ramp[..., np.newaxis])
        + np.asarray(second) * ramp[..., np.newaxis]
    )
    return np.asarray(colours, dtype=np.uint8)


def _draw_shapes(
    draw: ImageDraw.ImageDraw, rng: random.Random, colour: tuple[int, int, int]
) -> None:
    style = rng.randrange(3)
    for i in range(rng.randint(3, 7)):
        alpha = rng.randint(40, 120)
        x, y, r = rng.uniform(0, COVER_SIZE), rng.uniform(0, COVER_SIZE * 0.7), rng.uniform(30, 180)
        if style == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, alpha))
        elif style == 1:
            top = i * COVER_SIZE / 8
            draw.rectangle((0, top, COVER_SIZE, top + r / 6), fill=(*colour, alpha))
        else:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=(*colour, alpha))


def _draw_caption(draw: ImageDraw.ImageDraw, title: str, artist: str) -> None:
    margin = 28
    title_font, title = _cover_font(40, title.upper())
    artist_font, artist = _cover_font(24, artist)
    lines = _wrap(draw, title, title_font, COVER_SIZE - 2 * margin)
    y = COVER_SIZE - margin - 34 - 50 * len(lines)
    draw.rectangle((0, y - 16, COVER_SIZE, COVER_SIZE), fill=(0, 0, 0, 110))
    for line in lines:
        draw.text((margin, y), line, font=title_font, fill=(255, 255, 255, 255))
        y += 50
    draw.text((margin, y + 4), artist, font=artist_font, fill=(255, 255, 255, 210))


def _cover_font(size: int, text: str) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    """A common system font with accented Latin letters; Pillow's built-in font has none, so
    without one the caption drops its accents rather than showing empty boxes."""
    for name in ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf"):
        try:
            return ImageFont.truetype(name, size), text
        except OSError:
            continue
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return ImageFont.load_default(size=size), folded


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: int,
) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines[:3]
