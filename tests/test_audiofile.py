"""Probing audio files: tags in every dialect, true duration, loudness, refusals with reasons."""

from __future__ import annotations

import base64
import fractions
import pickle
from collections.abc import Callable
from pathlib import Path

import av
import mutagen.flac
import mutagen.id3
import mutagen.mp4
import mutagen.oggopus
import mutagen.wave
import numpy as np
import pytest

from onair.catalog.audiofile import (
    SUPPORTED_EXTENSIONS,
    AudioFileError,
    AudioFileInfo,
    probe_audio_file,
)
from tests.conftest import shared_data

# The smallest valid PNG (1x1, transparent): real image bytes for artwork round trips.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TONE_DBFS = -20.0
TONE_SECONDS = 2.0


def _shared_audio_dir() -> Path:
    return shared_data() / "audio"


def _write_tone(
    path: Path,
    codec: str,
    rate: int = 48_000,
    seconds: float = TONE_SECONDS,
    metadata: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    dbfs: float | None = TONE_DBFS,
) -> Path:
    """A stereo 997 Hz sine peaking at ``dbfs``, so it measures ``dbfs`` LUFS; None: silence."""
    t = np.arange(round(seconds * rate)) / rate
    level = 0.0 if dbfs is None else 10 ** (dbfs / 20)
    sine = (level * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    samples = np.vstack([sine, sine])
    with av.open(str(path), "w", options=container_options or {}) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        step = 1024
        for start in range(0, samples.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + step]),
                format="fltp",
                layout="stereo",
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = fractions.Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _id3_frames(tags: mutagen.id3.ID3) -> None:
    tags.add(mutagen.id3.TIT2(encoding=3, text="Test Tone"))
    tags.add(mutagen.id3.TPE1(encoding=3, text=["Alice", "Bob"]))
    tags.add(mutagen.id3.TALB(encoding=3, text="Tones"))
    tags.add(mutagen.id3.TCON(encoding=3, text=["Ambient", "Drone"]))
    tags.add(mutagen.id3.TDRC(encoding=3, text="2012-05-01"))
    tags.add(mutagen.id3.TRCK(encoding=3, text="3/12"))
    tags.add(mutagen.id3.TSRC(encoding=3, text="US-S1Z-12-00001"))
    tags.add(mutagen.id3.TXXX(encoding=3, desc="EXPLICIT", text="1"))
    tags.add(mutagen.id3.APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG))


def _tag_mp3(path: Path) -> None:
    tags = mutagen.id3.ID3()
    _id3_frames(tags)
    tags.save(path)


def _tag_wav(path: Path) -> None:
    audio = mutagen.wave.WAVE(path)
    audio.add_tags()
    _id3_frames(audio.tags)
    audio.save()


def _vorbis_comments(tags: mutagen.flac.VCFLACDict) -> None:
    tags["TITLE"] = "Test Tone"
    tags["ARTIST"] = ["Alice", "Bob"]
    tags["ALBUM"] = "Tones"
    tags["GENRE"] = ["Ambient", "Drone"]
    tags["DATE"] = "2012-05-01"
    tags["TRACKNUMBER"] = "3"
    tags["ISRC"] = "USS1Z1200001"
    tags["ITUNESADVISORY"] = "1"


def _cover() -> mutagen.flac.Picture:
    picture = mutagen.flac.Picture()
    picture.type = 3
    picture.mime = "image/png"
    picture.data = PNG
    return picture


def _tag_flac(path: Path) -> None:
    audio = mutagen.flac.FLAC(path)
    _vorbis_comments(audio.tags)
    audio.add_picture(_cover())
    audio.save()


def _tag_opus(path: Path) -> None:
    audio = mutagen.oggopus.OggOpus(path)
    _vorbis_comments(audio.tags)
    audio.tags["METADATA_BLOCK_PICTURE"] = base64.b64encode(_cover().write()).decode("ascii")
    audio.save()


def _tag_m4a(path: Path) -> None:
    audio = mutagen.mp4.MP4(path)
    audio["\xa9nam"] = "Test Tone"
    audio["\xa9ART"] = ["Alice", "Bob"]
    audio["\xa9alb"] = "Tones"
    audio["\xa9gen"] = ["Ambient", "Drone"]
    audio["\xa9day"] = "2012-05-01"
    audio["trkn"] = [(3, 12)]
    audio["rtng"] = [1]
    audio["----:com.apple.iTunes:ISRC"] = [mutagen.mp4.MP4FreeForm(b"USS1Z1200001")]
    audio["covr"] = [mutagen.mp4.MP4Cover(PNG, imageformat=mutagen.mp4.MP4Cover.FORMAT_PNG)]
    audio.save()


# (extension, encoder, sample rate, tagger, loudness tolerance). Lossy encoders shave a little
# off a pure tone (LAME about 0.45 dB at 128 kb/s; ffmpeg measures the same file identically).
FORMATS: tuple[tuple[str, str, int, Callable[[Path], None], float], ...] = (
    (".mp3", "libmp3lame", 44_100, _tag_mp3, 0.6),
    (".ogg", "libopus", 48_000, _tag_opus, 0.2),
    (".flac", "flac", 44_100, _tag_flac, 0.05),
    (".m4a", "aac", 48_000, _tag_m4a, 0.2),
    (".wav", "pcm_s16le", 48_000, _tag_wav, 0.05),
)


def _assert_readable_reason(error: AudioFileError, *words: str) -> None:
    reason = error.reason
    assert reason == str(error)
    assert reason and "\n" not in reason and len(reason) < 200, reason
    for word in words:
        assert word.lower() in reason.lower(), reason


# --- the shared real recordings ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_probes() -> dict[str, AudioFileInfo]:
    directory = _shared_audio_dir()
    paths = sorted(directory.glob("*.ogg"))
    if not paths:
        pytest.skip(f"shared recordings not found in {directory} (set ONAIR_SHARED_DATA)")
    return {path.name: probe_audio_file(path) for path in paths}


@pytest.mark.media
def test_shared_recordings_probe_with_sane_figures(shared_probes: dict[str, AudioFileInfo]) -> None:
    assert len(shared_probes) == 5
    for name, info in shared_probes.items():
        assert info.codec == "vorbis", name
        assert 5.0 < info.duration_s < 200.0, name
        assert -30.0 < info.loudness_lufs < -8.0, name


@pytest.mark.media
def test_lets_go_fishin(shared_probes: dict[str, AudioFileInfo]) -> None:
    info = shared_probes["Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"]
    assert info.title == "Let's Go Fishin'"
    assert info.artists == ("Karissa Hobbs",)
    assert info.album == "Age of Flowers"
    assert info.genres == ("Folk",)
    assert info.year == 2016  # tagged as the timestamp "2016-03-18T12:24:48"
    assert info.track_number == 9
    assert info.duration_s == pytest.approx(133.0, abs=0.1)
    assert info.loudness_lufs == pytest.approx(-14.0, abs=0.3)  # ffmpeg's ebur128 reads -14.0
    assert (info.sample_rate, info.channels) == (44_100, 2)


@pytest.mark.media
def test_untagged_mono_speech_falls_back_to_the_file_name(
    shared_probes: dict[str, AudioFileInfo],
) -> None:
    info = shared_probes["5703-47212-0000.hq.ogg"]
    assert info.title == "5703-47212-0000.hq"
    assert info.artists == ()
    assert (info.sample_rate, info.channels) == (16_000, 1)
    assert info.duration_s == pytest.approx(14.84, abs=0.05)
    # Upmixed to stereo at -3 dB per side, mono keeps its loudness: ffmpeg reads -19.6.
    assert info.loudness_lufs == pytest.approx(-19.6, abs=0.3)


@pytest.mark.media
def test_track_zero_means_unknown(shared_probes: dict[str, AudioFileInfo]) -> None:
    info = shared_probes["Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg"]
    assert info.track_number is None
    assert info.year == 2011


# --- generated files in every supported format ------------------------------------------------


@pytest.mark.media
@pytest.mark.parametrize(
    ("extension", "codec", "rate", "tag", "tolerance"), FORMATS, ids=[f[0] for f in FORMATS]
)
def test_each_format_probes_tags_duration_and_loudness(
    tmp_path: Path,
    extension: str,
    codec: str,
    rate: int,
    tag: Callable[[Path], None],
    tolerance: float,
) -> None:
    path = _write_tone(tmp_path / f"tone{extension}", codec, rate)
    tag(path)

    info = probe_audio_file(path)

    assert info.title == "Test Tone"
    assert info.artists == ("Alice", "Bob")
    assert info.album == "Tones"
    assert info.genres == ("Ambient", "Drone")
    assert info.year == 2012
    assert info.track_number == 3
    assert info.isrc == "USS1Z1200001"
    assert info.explicit is True
    assert info.artwork == PNG
    assert info.artwork_mime == "image/png"
    assert info.duration_s == pytest.approx(TONE_SECONDS, abs=0.1)
    assert info.loudness_lufs == pytest.approx(TONE_DBFS, abs=tolerance)
    assert (info.sample_rate, info.channels) == (rate, 2)


@pytest.mark.media
def test_untagged_file_is_titled_by_its_name(tmp_path: Path) -> None:
    info = probe_audio_file(_write_tone(tmp_path / "Morning Jingle.flac", "flac"))
    assert info.title == "Morning Jingle"
    assert info.artists == ()
    assert info.genres == ()
    assert (info.album, info.year, info.track_number, info.isrc) == (None,) * 4
    assert (info.artwork, info.artwork_mime) == (None, None)
    assert info.explicit is False


@pytest.mark.media
def test_silent_file_has_no_loudness(tmp_path: Path) -> None:
    info = probe_audio_file(_write_tone(tmp_path / "silence.wav", "pcm_s16le", dbfs=None))
    assert info.loudness_lufs is None
    assert info.duration_s == pytest.approx(TONE_SECONDS, abs=0.01)


@pytest.mark.media
def test_wav_riff_info_tags(tmp_path: Path) -> None:
    # ffmpeg's WAV muxer writes container metadata as a LIST/INFO chunk, which mutagen cannot.
    metadata = {
        "title": "Info Title",
        "artist": "Info Artist",
        "album": "Info Album",
        "genre": "Jazz",
        "date": "1999-02-03",
        "track": "4",
    }
    info = probe_audio_file(_write_tone(tmp_path / "info.wav", "pcm_s16le", metadata=metadata))
    assert info.title == "Info Title"
    assert info.artists == ("Info Artist",)
    assert info.album == "Info Album"
    assert info.genres == ("Jazz",)
    assert info.year == 1999
    assert info.track_number == 4


@pytest.mark.media
def test_vorbis_comment_details(tmp_path: Path) -> None:
    path = _write_tone(tmp_path / "details.flac", "flac", seconds=0.5)
    audio = mutagen.flac.FLAC(path)
    audio.tags["ARTIST"] = "Alice feat. Bob"
    audio.tags["ARTISTS"] = ["Alice", "Bob"]
    audio.tags["GENRE"] = "Rock; Pop; Rock"
    audio.tags["DATE"] = "2016-03-18T12:24:48"
    audio.tags["TRACKNUMBER"] = "07/10"
    audio.tags["ISRC"] = "not an isrc"
    audio.tags["ITUNESADVISORY"] = "2"
    audio.save()

    info = probe_audio_file(path)

    assert info.artists == ("Alice", "Bob")  # the individual names, not the display credit
    assert info.genres == ("Rock", "Pop")
    assert info.year == 2016
    assert info.track_number == 7
    assert info.isrc is None
    assert info.explicit is False  # 2 is "clean"


@pytest.mark.media
def test_joined_artist_names_split_on_semicolons_only(tmp_path: Path) -> None:
    path = _write_tone(tmp_path / "acdc.mp3", "libmp3lame", seconds=0.5)
    tags = mutagen.id3.ID3()
    tags.add(mutagen.id3.TPE1(encoding=3, text="AC/DC; Simon & Garfunkel"))
    tags.save(path)
    assert probe_audio_file(path).artists == ("AC/DC", "Simon & Garfunkel")


@pytest.mark.media
def test_clean_mp4_rating_is_not_explicit(tmp_path: Path) -> None:
    path = _write_tone(tmp_path / "clean.m4a", "aac", seconds=0.5)
    audio = mutagen.mp4.MP4(path)
    audio["rtng"] = [2]
    audio.save()
    assert probe_audio_file(path).explicit is False


@pytest.mark.media
def test_info_pickles_and_keeps_artwork_bytes_out_of_its_repr(tmp_path: Path) -> None:
    # The folder importer probes in worker processes, so the result must survive pickling.
    path = _write_tone(tmp_path / "tone.flac", "flac", seconds=0.5)
    _tag_flac(path)
    info = probe_audio_file(path)
    assert pickle.loads(pickle.dumps(info)) == info
    assert "artwork=" not in repr(info)
    assert "artwork_mime='image/png'" in repr(info)


# --- refusals ---------------------------------------------------------------------------------


def test_supported_extensions() -> None:
    assert {".mp3", ".ogg", ".opus", ".flac", ".m4a", ".wav"} <= SUPPORTED_EXTENSIONS
    assert all(extension == extension.lower() for extension in SUPPORTED_EXTENSIONS)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "song.aac"
    path.write_bytes(b"\xff\xf1" + bytes(100))
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value, "unsupported", ".aac")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.touch()
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value, "empty")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(tmp_path / "gone.mp3")
    _assert_readable_reason(caught.value, "cannot read")


def test_text_file_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("Setlist for Friday:\n1. Let's Go Fishin'\n2. Hungarian Dance No. 5\n")
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value, "not an audio file", "text")


def test_png_named_flac(tmp_path: Path) -> None:
    path = tmp_path / "cover.flac"
    path.write_bytes(PNG)
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value, "not an audio file", "PNG")


@pytest.mark.media
def test_random_bytes_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value)


@pytest.mark.media
def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value, "no audio stream")


def _cut_in_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.media
@pytest.mark.parametrize(
    ("extension", "codec", "options"),
    [
        (".mp3", "libmp3lame", {}),
        (".flac", "flac", {}),
        (".ogg", "libopus", {}),
        (".wav", "pcm_s16le", {}),
        (".m4a", "aac", {}),
        (".m4a", "aac", {"movflags": "+faststart"}),
    ],
    ids=["mp3", "flac", "ogg", "wav", "m4a", "m4a-faststart"],
)
def test_file_cut_in_half_is_refused(
    tmp_path: Path, extension: str, codec: str, options: dict[str, str]
) -> None:
    whole = _write_tone(
        tmp_path / f"whole{extension}", codec, seconds=4.0, container_options=options
    )
    assert probe_audio_file(whole).duration_s == pytest.approx(4.0, abs=0.1)
    half = _cut_in_half(whole, tmp_path / f"half{extension}")
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(half)
    reason = caught.value.reason
    _assert_readable_reason(caught.value)
    assert "truncated" in reason or "corrupt" in reason, reason


@pytest.mark.media
def test_corrupt_data_mid_file_is_refused(tmp_path: Path) -> None:
    path = _write_tone(tmp_path / "damaged.flac", "flac", seconds=4.0)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(2000)
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError) as caught:
        probe_audio_file(path)
    _assert_readable_reason(caught.value)
