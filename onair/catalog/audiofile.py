"""Probe an audio file for the catalog: its tags, its true duration and its loudness.

Tags come from mutagen, which knows every container's tag dialect (ID3, Vorbis comments, MP4
atoms, RIFF INFO we parse ourselves). Duration and loudness come from decoding the whole file with
PyAV rather than trusting headers: a header states what the file should hold, and the import must
know what it actually holds. Decoding also proves the file plays, so a song that would fail
on air is refused here with a reason the operator can act on.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import av
import av.container
import mutagen
import mutagen.flac
import mutagen.id3
import mutagen.mp3
import mutagen.mp4
import mutagen.ogg
import mutagen.wave
import numpy as np
import numpy.typing as npt

from onair.studio.loudness import LoudnessMeter

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "AudioFileError",
    "AudioFileInfo",
    "probe_audio_file",
]

SUPPORTED_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".wav"}
)

# The studio's program format; measuring at this rate and layout measures what listeners hear.
DECODE_SAMPLE_RATE: Final = 48_000
DECODE_LAYOUT: Final = "stereo"

# Lossy encoders' delay and padding make a decoded track differ from its header by some tens of
# milliseconds; anything beyond this allowance means audio is missing.
_LOSSY_SLACK_SECONDS: Final = 0.5
_LOSSY_SLACK_FRACTION: Final = 0.01
# A lossless header (FLAC STREAMINFO, WAV data size) counts every sample, so only rounding is
# allowed. This is what catches damaged FLAC frames, which ffmpeg's parser drops silently.
_LOSSLESS_SLACK_SECONDS: Final = 0.01

# Feeding the meter about half a second at a time keeps per-call overhead negligible while
# holding only that much decoded audio in memory.
_METER_BATCH_SAMPLES: Final = DECODE_SAMPLE_RATE // 2

_SNIFF_BYTES: Final = 512

# The largest possible Ogg page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_OGG_MAX_PAGE: Final = 27 + 255 + 255 * 255

_ISRC: Final = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
_YEAR: Final = re.compile(r"\s*(\d{4})")
_TRACK: Final = re.compile(r"\s*(\d+)")
_EXPLICIT_VALUES: Final = frozenset({"1", "4", "true", "yes", "explicit", "e"})

# Formats whose magic bytes say "this is not audio", so the reason names what the file is.
_NOT_AUDIO_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
)

_IMAGE_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)

# RIFF INFO chunk ids mapped to our tag names. INFO "ISRC" is "source" in the RIFF spec, but
# some taggers store the recording code there, so it is kept only when it looks like one.
_RIFF_INFO_KEYS: Final[Mapping[bytes, str]] = MappingProxyType(
    {
        b"INAM": "title",
        b"IART": "artist",
        b"IPRD": "album",
        b"IGNR": "genre",
        b"ICRD": "date",
        b"ITRK": "tracknumber",
        b"IPRT": "tracknumber",
        b"ISRC": "isrc",
    }
)

_ID3_TEXT_FRAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "TIT2": "title",
        "TPE1": "artist",
        "TALB": "album",
        "TDRC": "date",
        "TDOR": "originaldate",
        "TRCK": "tracknumber",
        "TSRC": "isrc",
    }
)

_MP4_TEXT_ATOMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "\xa9nam": "title",
        "\xa9ART": "artist",
        "\xa9alb": "album",
        "\xa9gen": "genre",
        "\xa9day": "date",
        "----:com.apple.iTunes:ISRC": "isrc",
        "----:com.apple.iTunes:ARTISTS": "artists",
    }
)

_MP4_COVER_MIME: Final[Mapping[int, str]] = MappingProxyType(
    {
        mutagen.mp4.MP4Cover.FORMAT_JPEG: "image/jpeg",
        mutagen.mp4.MP4Cover.FORMAT_PNG: "image/png",
    }
)

# MP4 "rtng": 0 none, 2 clean, 1 and (in older iTunes) 4 explicit.
_MP4_EXPLICIT_RATINGS: Final = frozenset({1, 4})

# The APIC/FLAC picture type for the front cover, preferred over any other embedded picture.
_FRONT_COVER: Final = 3

_TagFields = dict[str, list[str]]


class AudioFileError(Exception):
    """The file cannot be used as a catalog track; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AudioFileInfo:
    """What the catalog needs to know about one audio file.

    ``duration_s`` is counted from the decoded samples. ``loudness_lufs`` is the integrated
    loudness (BS.1770 / EBU R128) of the 48 kHz stereo decode, the program format the studio
    plays; it is None for a silent file, whose loudness (-inf) no database column or JSON
    document can hold. ``artwork`` is the embedded front cover (or first picture) and
    ``artwork_mime`` its type, judged from the image bytes; both are None without artwork.
    ``codec``, ``sample_rate`` and ``channels`` describe the source stream as stored.
    """

    path: Path
    title: str
    artists: tuple[str, ...]
    album: str | None
    genres: tuple[str, ...]
    year: int | None
    track_number: int | None
    isrc: str | None
    explicit: bool
    artwork: bytes | None = field(repr=False)
    artwork_mime: str | None
    duration_s: float
    loudness_lufs: float | None
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class _Artwork:
    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class _Decoded:
    duration: float
    lossless: bool
    loudness: float
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class _TagRead:
    fields: _TagFields
    artwork: _Artwork | None
    # The length the container's header declares, when it is trustworthy enough to detect a
    # truncated file by; None when the header only estimates it.
    declared_length: float | None


def probe_audio_file(path: Path) -> AudioFileInfo:
    """Read tags, decode the whole file and measure it; raises :class:`AudioFileError`.

    This is blocking, CPU-bound work (about a second for a four-minute song): call it from a
    worker thread, not from the event loop.
    """
    extension = path.suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        shown = extension or "no extension"
        raise AudioFileError(f"unsupported file type ({shown}); supported: {supported}")
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError as error:
        raise AudioFileError(f"cannot read file: {error.strerror or error}") from error
    if size == 0:
        raise AudioFileError("file is empty")
    what = _describe_non_audio(head)
    if what is not None:
        raise AudioFileError(f"not an audio file: the content is {what}")

    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise AudioFileError(
            f"unreadable or corrupt audio file: {_ffmpeg_reason(error)}"
        ) from error
    with container:
        if not container.streams.audio:
            raise AudioFileError("no audio stream in the file")
        tags = _read_tags(path)
        if container.format.name == "ogg" and not _ogg_ends_with_end_of_stream(path):
            raise AudioFileError("truncated: the Ogg stream stops before its last page")
        decoded = _decode(container)

    if decoded.duration == 0.0:
        raise AudioFileError("no audio could be decoded from the file")
    declared = tags.declared_length
    if declared is not None:
        slack = (
            _LOSSLESS_SLACK_SECONDS
            if decoded.lossless
            else _LOSSY_SLACK_SECONDS + _LOSSY_SLACK_FRACTION * declared
        )
        if decoded.duration < declared - slack:
            raise AudioFileError(
                f"truncated or damaged: decoded {decoded.duration:.1f} s of the "
                f"{declared:.1f} s its header declares"
            )

    fields = tags.fields
    return AudioFileInfo(
        path=path,
        title=_first(fields, "title") or path.stem,
        artists=_artists(fields),
        album=_first(fields, "album"),
        genres=_split_values(fields.get("genre", [])),
        year=_year(fields),
        track_number=_track_number(_first(fields, "tracknumber")),
        isrc=_isrc(fields.get("isrc", [])),
        explicit=any(v.strip().lower() in _EXPLICIT_VALUES for v in fields.get("explicit", [])),
        artwork=tags.artwork.data if tags.artwork else None,
        artwork_mime=tags.artwork.mime if tags.artwork else None,
        duration_s=decoded.duration,
        loudness_lufs=decoded.loudness if math.isfinite(decoded.loudness) else None,
        codec=decoded.codec,
        sample_rate=decoded.sample_rate,
        channels=decoded.channels,
    )


def _describe_non_audio(head: bytes) -> str | None:
    for signature, what in _NOT_AUDIO_SIGNATURES:
        if head.startswith(signature):
            return what
    if head.startswith(b"RIFF") and head[8:12] != b"WAVE":
        return f"a RIFF {head[8:12].decode('latin-1').strip()} file, not WAVE"
    if _looks_like_text(head):
        return "text"
    return None


def _looks_like_text(head: bytes) -> bool:
    # Every audio container starts with binary header bytes (NULs, 0xFF sync words), so a head
    # that is clean UTF-8 without control characters is a text file.
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The sniffed head may end inside a multi-byte character.
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return all(char.isprintable() or char in "\t\n\r\f" for char in text)


def _ffmpeg_reason(error: av.FFmpegError) -> str:
    # PyAV's message repeats the path and errno; the strerror is what a person can act on.
    return str(error.strerror or error).strip().rstrip(".").lower()


def _decode(container: av.container.InputContainer) -> _Decoded:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp", layout=DECODE_LAYOUT, rate=DECODE_SAMPLE_RATE)
    meter = LoudnessMeter(DECODE_SAMPLE_RATE, channels=2)
    batch: list[npt.NDArray[Any]] = []
    batched = 0
    total = 0

    def feed(frames: Iterable[av.AudioFrame]) -> None:
        nonlocal batched, total
        for frame in frames:
            batch.append(frame.to_ndarray())
            batched += frame.samples
            total += frame.samples
        if batched >= _METER_BATCH_SAMPLES:
            flush()

    def flush() -> None:
        nonlocal batched
        if batch:
            meter.add(np.concatenate(batch, axis=1))
            batch.clear()
            batched = 0

    try:
        for frame in container.decode(stream):
            feed(resampler.resample(frame))
        feed(resampler.resample(None))
    except av.FFmpegError as error:
        position = total / DECODE_SAMPLE_RATE
        raise AudioFileError(
            f"corrupt or truncated audio data at {position:.1f} s: {_ffmpeg_reason(error)}"
        ) from error
    flush()

    return _Decoded(
        duration=total / DECODE_SAMPLE_RATE,
        lossless=stream.codec_context.codec.lossless,
        loudness=meter.integrated,
        codec=stream.codec_context.codec.canonical_name,
        sample_rate=stream.codec_context.sample_rate,
        channels=stream.codec_context.channels,
    )


def _ogg_ends_with_end_of_stream(path: Path) -> bool:
    """Whether the last complete Ogg page in the file carries the end-of-stream flag.

    An Ogg file's header holds no length, and the demuxer reads the length from the last page
    it finds, so a file cut short looks like a shorter song. The end-of-stream flag on the final
    page is the only proof the stream was written to its end.
    """
    with path.open("rb") as file:
        file.seek(0, 2)
        size = file.tell()
        file.seek(max(0, size - _OGG_MAX_PAGE - 1))
        tail = file.read()
    start = tail.rfind(b"OggS")
    while start >= 0:
        if _is_complete_ogg_page(tail, start):
            header_type = tail[start + 5]
            return bool(header_type & 0x04)
        start = tail.rfind(b"OggS", 0, start)
    return False


def _is_complete_ogg_page(data: bytes, start: int) -> bool:
    header_end = start + 27
    if header_end > len(data) or data[start + 4] != 0:
        return False
    lacing_end = header_end + data[start + 26]
    if lacing_end > len(data):
        return False
    return lacing_end + sum(data[header_end:lacing_end]) <= len(data)


def _read_tags(path: Path) -> _TagRead:
    try:
        audio = mutagen.File(path)
    # mutagen wraps most parse failures in MutagenError, but a few malformed headers still
    # surface as the struct or value errors of the parser underneath.
    except (mutagen.MutagenError, ValueError, struct.error) as error:
        raise AudioFileError(f"unreadable container or tags: {error}") from error
    if audio is None:
        # PyAV recognised audio that mutagen does not know; the file has no tags we can read.
        return _TagRead(fields={}, artwork=None, declared_length=None)

    declared_length = _declared_length(audio)
    tags = audio.tags
    if isinstance(audio, mutagen.mp4.MP4):
        return _TagRead(
            fields=_mp4_fields(tags) if tags is not None else {},
            artwork=_mp4_artwork(tags) if tags is not None else None,
            declared_length=declared_length,
        )
    if isinstance(audio, mutagen.flac.FLAC | mutagen.ogg.OggFileType):
        pictures: list[Any] = list(getattr(audio, "pictures", []))
        return _TagRead(
            fields=_vorbis_fields(tags) if tags is not None else {},
            artwork=_vorbis_artwork(tags, pictures),
            declared_length=declared_length,
        )

    fields: _TagFields = {}
    artwork = None
    if isinstance(tags, mutagen.id3.ID3):
        fields = _id3_fields(tags)
        artwork = _id3_artwork(tags)
    if isinstance(audio, mutagen.wave.WAVE):
        # ID3 in a WAV file is the richer dialect; RIFF INFO fills whatever it lacks.
        for key, values in _riff_info_fields(path).items():
            fields.setdefault(key, values)
    return _TagRead(fields=fields, artwork=artwork, declared_length=declared_length)


def _declared_length(audio: Any) -> float | None:
    length = float(getattr(audio.info, "length", 0.0) or 0.0)
    if length <= 0.0:
        return None
    # Without a Xing/Info/VBRI header the MP3 length is an estimate from the file size, which
    # shrinks with a cut file and is wrong for VBR, so it proves nothing.
    bitrate_mode = getattr(audio.info, "bitrate_mode", None)
    if isinstance(audio, mutagen.mp3.MP3) and bitrate_mode == mutagen.mp3.BitrateMode.UNKNOWN:
        return None
    return length


def _id3_fields(tags: Any) -> _TagFields:
    fields: _TagFields = {}
    for frame_id, key in _ID3_TEXT_FRAMES.items():
        for frame in tags.getall(frame_id):
            fields.setdefault(key, []).extend(str(text) for text in frame.text)
    for frame in tags.getall("TCON"):
        # TCON.genres resolves ID3v1 numeric references such as "(17)" to names.
        fields.setdefault("genre", []).extend(str(genre) for genre in frame.genres)
    for frame in tags.getall("TXXX"):
        description = str(frame.desc).strip().lower()
        if description in {"itunesadvisory", "explicit"}:
            fields.setdefault("explicit", []).extend(str(text) for text in frame.text)
        elif description == "artists":
            fields.setdefault("artists", []).extend(str(text) for text in frame.text)
    return fields


def _id3_artwork(tags: Any) -> _Artwork | None:
    pictures = [frame for frame in tags.getall("APIC") if frame.mime != "-->"]
    return _best_picture(pictures)


def _vorbis_fields(tags: Any) -> _TagFields:
    fields: _TagFields = {}
    for key, value in tags:
        name = str(key).lower()
        if name == "year":
            name = "originaldate"
        elif name in {"itunesadvisory", "explicit"}:
            name = "explicit"
        fields.setdefault(name, []).append(str(value))
    return fields


def _vorbis_artwork(tags: Any, flac_pictures: Sequence[Any]) -> _Artwork | None:
    pictures = list(flac_pictures)
    # mutagen's Picture is unannotated; calling it through Any keeps mypy's strict mode useful
    # everywhere else in this module.
    parse_picture: Any = mutagen.flac.Picture
    if tags is not None:
        for encoded in tags.get("metadata_block_picture", []):
            try:
                pictures.append(parse_picture(base64.b64decode(encoded)))
            except (binascii.Error, mutagen.MutagenError, struct.error):
                continue
    artwork = _best_picture(pictures)
    if artwork is not None or tags is None:
        return artwork
    # The pre-standard COVERART field, still written by some older taggers.
    for encoded in tags.get("coverart", []):
        try:
            data = base64.b64decode(encoded)
        except binascii.Error:
            continue
        declared = next(iter(tags.get("coverartmime", [])), "")
        return _Artwork(data=data, mime=_image_mime(data, declared))
    return None


def _best_picture(pictures: Sequence[Any]) -> _Artwork | None:
    candidates = [picture for picture in pictures if picture.data]
    if not candidates:
        return None
    front = [picture for picture in candidates if picture.type == _FRONT_COVER]
    chosen = (front or candidates)[0]
    data = bytes(chosen.data)
    return _Artwork(data=data, mime=_image_mime(data, str(chosen.mime)))


def _mp4_fields(tags: Any) -> _TagFields:
    fields: _TagFields = {}
    for atom, key in _MP4_TEXT_ATOMS.items():
        for value in tags.get(atom, []):
            text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else value
            fields.setdefault(key, []).append(str(text))
    for track, _total in tags.get("trkn", []):
        fields.setdefault("tracknumber", []).append(str(track))
    for rating in tags.get("rtng", []):
        explicit = int(rating) in _MP4_EXPLICIT_RATINGS
        fields.setdefault("explicit", []).append("1" if explicit else "0")
    return fields


def _mp4_artwork(tags: Any) -> _Artwork | None:
    for cover in tags.get("covr", []):
        data = bytes(cover)
        if data:
            declared = _MP4_COVER_MIME.get(cover.imageformat, "")
            return _Artwork(data=data, mime=_image_mime(data, declared))
    return None


def _riff_info_fields(path: Path) -> _TagFields:
    """Tags from the LIST/INFO chunk of a RIFF WAVE file (mutagen reads only its ID3 chunk)."""
    fields: _TagFields = {}
    with path.open("rb") as file:
        if file.read(12)[8:12] != b"WAVE":
            return fields
        while True:
            header = file.read(8)
            if len(header) < 8:
                return fields
            chunk_id, size = struct.unpack("<4sI", header)
            padded = size + (size & 1)
            if chunk_id != b"LIST":
                file.seek(padded, 1)
                continue
            body = file.read(padded)
            if body[:4] == b"INFO":
                _parse_riff_info(body[4:], fields)


def _parse_riff_info(body: bytes, fields: _TagFields) -> None:
    offset = 0
    while offset + 8 <= len(body):
        chunk_id, size = struct.unpack_from("<4sI", body, offset)
        raw = body[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
        key = _RIFF_INFO_KEYS.get(chunk_id)
        text = _decode_riff_text(raw)
        if key is not None and text:
            fields.setdefault(key, []).append(text)


def _decode_riff_text(raw: bytes) -> str:
    # RIFF INFO has no declared encoding; modern writers use UTF-8, old ones a Windows code page.
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace").strip()


def _image_mime(data: bytes, declared: str) -> str:
    # The bytes are the authority: taggers write "jpg", "image/jpg" or nothing at all.
    for signature, mime in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    declared = declared.strip().lower()
    if not declared:
        return "application/octet-stream"
    return declared if "/" in declared else f"image/{declared}"


def _first(fields: _TagFields, key: str) -> str | None:
    for value in fields.get(key, []):
        text = value.strip()
        if text:
            return text
    return None


def _split_values(values: Iterable[str]) -> tuple[str, ...]:
    """Multi-value tags as a tuple, splitting values joined with ";" and dropping repeats.

    Only ";" (and a stray NUL) is treated as a separator: "/", "&" and "feat." occur inside real
    names such as "AC/DC" or "Simon & Garfunkel", so splitting on them would invent artists.
    """
    seen: dict[str, None] = {}
    for value in values:
        for part in re.split(r"[;\x00]", value):
            name = part.strip()
            if name:
                seen.setdefault(name, None)
    return tuple(seen)


def _artists(fields: _TagFields) -> tuple[str, ...]:
    # Picard and others keep the display credit ("A feat. B") in ARTIST and the individual
    # names in ARTISTS; the individual names are what search and royalties need.
    return _split_values(fields.get("artists", [])) or _split_values(fields.get("artist", []))


def _year(fields: _TagFields) -> int | None:
    for value in fields.get("date", []) + fields.get("originaldate", []):
        match = _YEAR.match(value)
        if match is not None and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def _track_number(value: str | None) -> int | None:
    if value is None:
        return None
    match = _TRACK.match(value)
    # Track numbers count from 1; a 0 is a tagger's placeholder for "unknown".
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1))


def _isrc(values: Iterable[str]) -> str | None:
    for value in values:
        code = re.sub(r"[\s-]", "", value).upper()
        if _ISRC.fullmatch(code):
            return code
    return None
