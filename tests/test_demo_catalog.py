"""The demo catalog, checked as audio: decoded, measured and read back the way an importer would."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from mutagen.id3 import ID3
from PIL import Image
from scipy import signal

from onair.catalog.demo import DemoSong, generate_demo_catalog

pytestmark = pytest.mark.media

SAMPLE_RATE = 48_000
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{2}\d{5}$")
# Short songs are cheap to render yet get the full catalog's names, albums, genres and grooves.
SHORT = {"min_duration_s": 6.5, "max_duration_s": 8.0}
# Full-length songs, kept to the short end of the default 60-180 s for speed.
FULL = {"count": 4, "seed": 1, "max_duration_s": 90.0}

Audio = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def catalog(catalog_dir: Path) -> list[DemoSong]:
    """Four songs of the length a fresh install plays."""
    return generate_demo_catalog(catalog_dir, **FULL)


@pytest.fixture(scope="module")
def decoded(catalog: list[DemoSong]) -> dict[Path, Audio]:
    return {song.path: _decode(song.path) for song in catalog}


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> list[DemoSong]:
    """A default-sized catalog of short songs."""
    return generate_demo_catalog(tmp_path_factory.mktemp("wide"), count=40, seed=1, **SHORT)


def _decode(path: Path) -> Audio:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert container.format.name == "mp3"
        assert stream.sample_rate == SAMPLE_RATE
        assert stream.channels == 2
        assert 120_000 <= stream.bit_rate <= 136_000
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
    return np.concatenate(frames, axis=1).astype(np.float32)


def _onset_strength(mono: Audio) -> tuple[npt.NDArray[np.float64], float]:
    """Spectral flux: how much louder each band got since the previous frame."""
    hop = 256
    _, _, spectrum = signal.stft(
        mono, fs=SAMPLE_RATE, nperseg=1024, noverlap=1024 - hop, boundary=None, padded=False
    )
    magnitude = np.log1p(100 * np.abs(spectrum))
    flux = np.maximum(np.diff(magnitude, axis=1), 0).sum(axis=0)
    second = SAMPLE_RATE // hop
    flux = np.maximum(flux - np.convolve(flux, np.ones(second) / second, mode="same"), 0)
    return flux, SAMPLE_RATE / hop


def _tempo(mono: Audio) -> float:
    """The tempo whose beat period and its multiples best match the onset autocorrelation."""
    envelope, frame_rate = _onset_strength(mono)
    envelope = envelope - envelope.mean()
    power = np.abs(np.fft.rfft(envelope, 2 * len(envelope))) ** 2
    autocorrelation = np.fft.irfft(power)[: len(envelope)]
    candidates = np.arange(60.0, 180.05, 0.1)
    lags = 60.0 * frame_rate / candidates
    frames = np.arange(len(autocorrelation))
    score = sum(np.interp(k * lags, frames, autocorrelation) for k in (1, 2, 3, 4))
    return float(candidates[int(np.argmax(score))])


def _tempo_error(measured: float, bpm: int) -> float:
    """Relative error, forgiving the usual half- and double-time readings."""
    return min(abs(measured - bpm * m) / (bpm * m) for m in (0.5, 1.0, 2.0))


def _band_shares(mono: Audio) -> dict[str, float]:
    freqs, psd = signal.welch(mono, fs=SAMPLE_RATE, nperseg=8192)
    total = float(psd[freqs >= 20].sum())

    def share(low: float, high: float) -> float:
        return float(psd[(freqs >= low) & (freqs < high)].sum()) / total

    return {"low": share(20, 150), "mid": share(200, 2000)}


def _is_accented(text: str) -> bool:
    """Any letter beyond ASCII: é decomposes under NFKD, but ø and å-like letters may not."""
    return not text.isascii()


def _audio_payload(path: Path) -> bytes:
    return path.read_bytes()[ID3(path).size :]


def _songs_by_album(songs: list[DemoSong]) -> Iterator[list[DemoSong]]:
    albums: dict[str, list[DemoSong]] = defaultdict(list)
    for song in songs:
        albums[song.album].append(song)
    yield from albums.values()


def test_songs_are_described(catalog: list[DemoSong]) -> None:
    assert len(catalog) == 4
    assert len({song.title for song in catalog}) == 4
    for song in catalog:
        assert song.path.is_file() and song.path.suffix == ".mp3"
        assert song.artists and all(song.artists)
        assert ISRC.match(song.isrc), song.isrc
        assert 2015 <= song.year <= 2026
        assert 60.0 <= song.duration_s <= 180.0
        assert re.fullmatch(r"[A-G][b#]? (major|minor)", song.key), song.key
        assert 60 <= song.bpm <= 180


def test_decoded_length_matches(catalog: list[DemoSong], decoded: dict[Path, Audio]) -> None:
    for song in catalog:
        seconds = decoded[song.path].shape[1] / SAMPLE_RATE
        assert abs(seconds - song.duration_s) < 0.5, song.title


def test_level_is_healthy(catalog: list[DemoSong], decoded: dict[Path, Audio]) -> None:
    loudness = []
    for song in catalog:
        audio = decoded[song.path]
        peak = float(np.max(np.abs(audio)))
        rms = float(np.sqrt(np.mean(audio**2)))
        middle = audio[:, audio.shape[1] // 2 : audio.shape[1] // 2 + 10 * SAMPLE_RATE]
        assert 0.7 < peak < 1.0, (song.title, peak)
        assert 0.05 < rms < 0.5, (song.title, rms)
        assert float(np.sqrt(np.mean(middle**2))) > 0.03, song.title
        assert float(np.max(np.abs(audio[:, -SAMPLE_RATE // 10 :]))) < 0.05, "ends faded out"
        loudness.append(20 * np.log10(rms))
    assert max(loudness) - min(loudness) < 12


def test_spectrum_has_bass_and_chords(catalog: list[DemoSong], decoded: dict[Path, Audio]) -> None:
    for song in catalog:
        shares = _band_shares(decoded[song.path].mean(axis=0))
        assert shares["low"] > 0.1, (song.title, shares)
        assert shares["mid"] > 0.05, (song.title, shares)


def test_tempo_is_audible(catalog: list[DemoSong], decoded: dict[Path, Audio]) -> None:
    for song in catalog:
        measured = _tempo(decoded[song.path].mean(axis=0))
        assert _tempo_error(measured, song.bpm) < 0.03, (song.title, song.bpm, measured)


def test_tags_read_back(catalog: list[DemoSong]) -> None:
    for song in catalog:
        tags = ID3(song.path)
        assert tags.version == (2, 4, 0)
        assert tags["TIT2"].text == [song.title]
        assert tags["TPE1"].text == song.artists
        assert tags["TALB"].text == [song.album]
        assert tags["TCON"].text == song.genres
        assert str(tags["TDRC"].text[0]) == str(song.year)
        assert tags["TSRC"].text == [song.isrc]
        assert tags["TRCK"].text[0].split("/")[0] == str(song.track_number)
        assert tags["TBPM"].text == [str(song.bpm)]
        tonic, mode = song.key.split()
        assert tags["TKEY"].text == [tonic + ("m" if mode == "minor" else "")]
        assert tags["TXXX:ITUNESADVISORY"].text == ["1" if song.explicit else "0"]


def test_artwork_is_a_png(catalog: list[DemoSong]) -> None:
    for song in catalog:
        (cover,) = ID3(song.path).getall("APIC")
        assert cover.mime == "image/png" and cover.type == 3
        image = Image.open(io.BytesIO(cover.data))
        assert image.format == "PNG" and image.size == (500, 500)
        image.load()
        pixels = np.asarray(image.convert("RGB").resize((16, 16))).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 8, "a design, not a flat fill"


def test_rerun_reuses_files(catalog_dir: Path, catalog: list[DemoSong]) -> None:
    stamps = {song.path: song.path.stat().st_mtime_ns for song in catalog}
    seen: list[DemoSong] = []
    started = time.perf_counter()
    again = generate_demo_catalog(catalog_dir, on_song=seen.append, **FULL)
    assert time.perf_counter() - started < 1.0
    assert again == catalog
    assert sorted(s.title for s in seen) == sorted(s.title for s in catalog)
    assert {song.path: song.path.stat().st_mtime_ns for song in catalog} == stamps


def test_full_catalog_is_varied(wide: list[DemoSong]) -> None:
    assert len(wide) == 40
    assert len({song.title for song in wide}) == 40
    assert len({song.isrc for song in wide}) == 40
    assert len({song.genres[0] for song in wide}) >= 6
    assert len({song.key for song in wide}) >= 8
    assert {song.key.split()[1] for song in wide} == {"major", "minor"}
    assert sum(_is_accented(song.title) for song in wide) >= 3
    assert any(_is_accented(artist) for song in wide for artist in song.artists)
    assert any(len(song.artists) > 1 for song in wide)
    assert 1 <= sum(song.explicit for song in wide) <= 15
    assert all(6.5 <= song.duration_s <= 8.0 for song in wide)


def test_albums_group_songs_by_one_artist(wide: list[DemoSong]) -> None:
    albums = list(_songs_by_album(wide))
    for album in albums:
        assert len({song.artists[0] for song in album}) == 1
        assert len({song.year for song in album}) == 1
        assert [song.track_number for song in album] == list(range(1, len(album) + 1))
    assert all(4 <= len(album) <= 8 for album in albums[:-1])


def test_every_genre_keeps_time(wide: list[DemoSong]) -> None:
    first_of_genre = {song.genres[0]: song for song in reversed(wide)}
    for genre, song in first_of_genre.items():
        measured = _tempo(_decode(song.path).mean(axis=0))
        assert _tempo_error(measured, song.bpm) < 0.03, (genre, song.bpm, measured)


def test_same_seed_same_catalog(tmp_path: Path, wide: list[DemoSong]) -> None:
    """A smaller count is a prefix of a larger one, down to the audio of each file."""
    again = generate_demo_catalog(tmp_path, count=3, seed=1, workers=1, **SHORT)
    assert [song.title for song in again] == [song.title for song in wide[:3]]
    for ours, theirs in zip(again, wide, strict=False):
        # Tags may differ (a cut-short album has fewer tracks); the audio may not.
        assert _audio_payload(ours.path) == _audio_payload(theirs.path)
    other = generate_demo_catalog(
        tmp_path / "other", count=1, seed=2, workers=1, min_duration_s=1.0, max_duration_s=1.0
    )
    assert other[0].title != wide[0].title


def test_stale_files_are_rendered_again(tmp_path: Path, wide: list[DemoSong]) -> None:
    for song in wide[:2]:
        shutil.copy(song.path, tmp_path / song.path.name)
    songs = generate_demo_catalog(tmp_path, count=2, seed=1, workers=1, **SHORT)
    digest = hashlib.sha256(songs[0].path.read_bytes()).hexdigest()
    tags = ID3(songs[0].path)
    tags["TIT2"].text = ["Someone Else's Song"]
    tags.save(songs[0].path)
    songs[1].path.unlink()
    generate_demo_catalog(tmp_path, count=2, seed=1, workers=1, **SHORT)
    assert hashlib.sha256(songs[0].path.read_bytes()).hexdigest() == digest
    assert ID3(songs[1].path)["TIT2"].text == [songs[1].title]
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize(
    "arguments",
    [{"count": -1}, {"workers": 0}, {"min_duration_s": 20.0, "max_duration_s": 10.0}],
)
def test_rejects_nonsense(tmp_path: Path, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_demo_catalog(tmp_path, **arguments)
