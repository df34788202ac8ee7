"""Importing a folder of audio files: tags with mutagen, duration and loudness with PyAV."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.audiofile import (
    SUPPORTED_EXTENSIONS,
    AudioFileError,
    AudioFileInfo,
    probe_audio_file,
)
from onair.catalog.importers import ImportSummary, Rejected, import_rows
from onair.catalog.service import LicenceTerms, TrackInput
from onair.clock import Clock

_ARTWORK_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
}


def find_audio_files(paths: Iterable[Path]) -> Iterator[Path | Rejected]:
    """Every supported file under `paths`, sorted; a path that is neither is reported."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
            )
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_EXTENSIONS:
                yield path
            else:
                yield Rejected(str(path), f"unsupported file type {path.suffix or '(none)'}")
        else:
            yield Rejected(str(path), "no such file or folder")


def _probe(path: Path) -> AudioFileInfo | Rejected:
    try:
        return probe_audio_file(path)
    except AudioFileError as exc:
        return Rejected(str(path), exc.reason)


def probe_files(
    files: list[Path], workers: int, on_file: Callable[[Path], None] | None = None
) -> Iterator[tuple[Path, AudioFileInfo | Rejected]]:
    """Probes files in worker processes: decoding for loudness is CPU-bound."""
    if workers <= 1 or len(files) < 2:
        for path in files:
            result = _probe(path)
            if on_file:
                on_file(path)
            yield path, result
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for path, result in zip(files, pool.map(_probe, files, chunksize=1), strict=True):
            if on_file:
                on_file(path)
            yield path, result


def _save_artwork(info: AudioFileInfo, folder: Path) -> str | None:
    if not info.artwork:
        return None
    digest = hashlib.sha256(info.artwork).hexdigest()[:24]
    path = folder / f"{digest}{_ARTWORK_SUFFIX.get(info.artwork_mime or '', '.img')}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(info.artwork)
    return str(path.resolve())


def track_input(
    info: AudioFileInfo, path: Path, source: str, artwork_dir: Path, licence: LicenceTerms
) -> TrackInput:
    resolved = path.resolve()
    return TrackInput(
        source=source,
        source_key=f"{source}:{resolved}",
        title=info.title,
        artists=tuple(info.artists) or ("Unknown artist",),
        album=info.album,
        genres=tuple(info.genres),
        year=info.year,
        track_number=info.track_number,
        duration_s=info.duration_s,
        isrc=info.isrc,
        explicit=info.explicit,
        loudness_lufs=info.loudness_lufs,
        audio_path=str(resolved),
        artwork_path=_save_artwork(info, artwork_dir),
        licence=licence,
    )


async def import_files(
    db: AsyncSession,
    clock: Clock,
    files: list[Path],
    *,
    artwork_dir: Path,
    source: str = "files",
    workers: int = 2,
    licence: LicenceTerms | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> ImportSummary:
    """Probes every file, then writes all good ones in one transaction: nothing half-imported."""
    rows: list[TrackInput | Rejected] = [
        result
        if isinstance(result, Rejected)
        else track_input(result, path, source, artwork_dir, licence or LicenceTerms())
        for path, result in probe_files(files, workers, on_file)
    ]
    return await import_rows(db, clock, rows, batch=200)
