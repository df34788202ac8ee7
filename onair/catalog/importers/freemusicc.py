"""The freemusi.cc CSV export (tracks.csv joined to releases.csv on `id`): metadata only.

The export is messy in known ways, each handled here: UTF-8 text that was decoded as CP1252 once
(``SeÃ±or``), ``?`` for "unknown", "A feat. B" artist credits, tracks without a title or artist,
and rows repeated or numbered twice within a release.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.importers import ImportSummary, ProgressCallback, Rejected, import_rows
from onair.catalog.service import LicenceTerms, TrackInput
from onair.catalog.text import repair_mojibake
from onair.clock import Clock

SOURCE = "csv"
KEY_PREFIX = "freemusicc"
TRACK_COLUMNS = ("id", "disc", "track", "title", "trackartist", "duration", "trackurl")
RELEASE_COLUMNS = ("id", "album", "artist", "genre", "label", "licenseurl", "year")
COMPILATION_ARTIST = "various artists"
# Longest plausible track (DJ mixes in the export run to a couple of hours).
MAX_DURATION_S = 24 * 3600

# "A feat. B", "A ft B", "A (featuring B)", "A Feat.B": the credit splits into A and then B.
_FEATURING = re.compile(r"\s*[(\[]?\s*\b(?:featuring|feat|ft)\b\.?\s*", re.IGNORECASE)
_CREDIT_SEPARATOR = re.compile(r"\s*(?:,|&|\band\b)\s*", re.IGNORECASE)


class CsvFormatError(ValueError):
    """The file as a whole cannot be read as this export (not one bad row: every row)."""


class _Unusable(Exception):
    """A row that cannot be imported; the message says why."""


@dataclass(frozen=True)
class Release:
    id: str
    album: str | None
    artist: str | None
    genres: tuple[str, ...]
    year: int | None
    label: str | None
    licence_url: str | None
    problem: str | None = None


def _clean(value: str | None) -> str | None:
    """Repaired, whitespace-normalised text; None for empty or the export's ``?``."""
    if value is None:
        return None
    cleaned = " ".join(repair_mojibake(value).split())
    return None if cleaned in ("", "?") else cleaned


@contextmanager
def _open_csv(path: Path, required: tuple[str, ...]) -> Iterator[csv.DictReader[str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise CsvFormatError(f"{path.name} lacks the column(s) {', '.join(missing)}")
        yield reader


def count_rows(tracks_csv: Path) -> int:
    """Data rows in `tracks_csv`, for a progress bar (a CSV pass; quoted newlines count right)."""
    with tracks_csv.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def read_releases(releases_csv: Path) -> dict[str, Release]:
    releases: dict[str, Release] = {}
    with _open_csv(releases_csv, RELEASE_COLUMNS) as reader:
        for row in reader:
            release_id = (row["id"] or "").strip()
            if release_id and release_id not in releases:
                releases[release_id] = _release(release_id, row)
    return releases


def _release(release_id: str, row: dict[str, str]) -> Release:
    year_text = _clean(row["year"])
    year: int | None = None
    problem = None
    if year_text is not None and year_text != "0":
        if year_text.isdigit() and 1000 <= int(year_text) <= 2100:
            year = int(year_text)
        else:
            problem = f"release {release_id!r} has a bad year {year_text!r}"
    genres = tuple(
        dict.fromkeys(g for g in (_clean(part) for part in (row["genre"] or "").split(",")) if g)
    )
    return Release(
        id=release_id,
        album=_clean(row["album"]),
        artist=_clean(row["artist"]),
        genres=genres,
        year=year,
        label=_clean(row["label"]),
        licence_url=_clean(row["licenseurl"]),
        problem=problem,
    )


def split_artists(credit: str) -> tuple[str, ...]:
    """``"A feat. B & C"`` → ``("A", "B", "C")``; a credit without "feat." stays whole."""
    parts = _FEATURING.split(credit, maxsplit=1)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip(" )]"):
        return (credit,)
    main, featured = parts[0].strip(), parts[1].strip().rstrip(")]").strip()
    guests = [g for g in _CREDIT_SEPARATOR.split(featured) if g]
    return tuple(dict.fromkeys([main, *guests]))


def _licence(release: Release) -> LicenceTerms:
    url = release.licence_url
    # Every Creative Commons licence allows playing on demand; without one we know nothing.
    creative_commons = url is not None and "creativecommons.org/" in url
    return LicenceTerms(
        territories=("*",),
        on_demand_allowed=creative_commons,
        label=release.label,
        licence_url=url,
    )


def _number(value: str | None, what: str, default: int | None = None) -> int:
    text = (value or "").strip()
    if text in ("", "?"):
        if default is None:
            raise _Unusable(f"missing {what}")
        return default
    if not text.isdigit():
        raise _Unusable(f"bad {what} {text!r}")
    return int(text)


def _duration(value: str | None) -> float | None:
    text = (value or "").strip()
    if text in ("", "?"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise _Unusable(f"bad duration {text!r}") from None
    if not 0 < seconds <= MAX_DURATION_S:
        raise _Unusable(f"bad duration {text!r} (seconds)")
    return seconds


def _file_name(url: str) -> str:
    return unquote(PurePosixPath(urlsplit(url).path).name) or url


@dataclass(frozen=True)
class _Seen:
    line: int
    url: str
    title: str
    artists: tuple[str, ...]


def parse_freemusicc(
    tracks_csv: Path, releases_csv: Path | None = None
) -> Iterator[TrackInput | Rejected]:
    """One `TrackInput` or `Rejected` per data row of `tracks_csv`, in file order."""
    releases = read_releases(releases_csv or tracks_csv.with_name("releases.csv"))
    seen: dict[str, _Seen] = {}
    with _open_csv(tracks_csv, TRACK_COLUMNS) as reader:
        line = reader.line_num + 1
        for row in reader:
            where = f"{tracks_csv.name} line {line}"
            try:
                yield _track(row, releases, seen, line)
            except _Unusable as exc:
                yield Rejected(where, str(exc))
            line = reader.line_num + 1


def _track(
    row: dict[str, str], releases: dict[str, Release], seen: dict[str, _Seen], line: int
) -> TrackInput:
    release_id = (row["id"] or "").strip()
    if not release_id:
        raise _Unusable("missing release id")
    release = releases.get(release_id)
    if release is None:
        raise _Unusable(f"no release with id {release_id!r} in releases.csv")
    if release.problem:
        raise _Unusable(release.problem)
    title = _clean(row["title"])
    if title is None:
        raise _Unusable("missing title")
    disc = _number(row["disc"], "disc number", default=1)
    track = _number(row["track"], "track number")
    duration = _duration(row["duration"])
    credit = _clean(row["trackartist"])
    if credit is None:
        if release.artist is None or release.artist.casefold() == COMPILATION_ARTIST:
            raise _Unusable("missing track artist (and the release is a compilation)")
        credit = release.artist
    artists = split_artists(credit)
    url = (row["trackurl"] or "").strip()
    key = _source_key(f"{KEY_PREFIX}:{release_id}:{disc}:{track}", url, seen)
    first = seen.get(key)
    if first is not None:
        if first.title == title and first.artists == artists:
            raise _Unusable(f"duplicate of line {first.line}")
        if first.title != title:
            differs = f"titled {title!r} here and {first.title!r} there"
        else:
            differs = (
                f"credited to {' & '.join(artists)!r} here, {' & '.join(first.artists)!r} there"
            )
        raise _Unusable(
            f"same release, disc {disc}, track {track} and file as line {first.line},"
            f" but {differs}: cannot tell which is right"
        )
    seen[key] = _Seen(line, url, title, artists)
    return TrackInput(
        source=SOURCE,
        source_key=key,
        title=title,
        artists=artists,
        album=release.album,
        album_artist=release.artist if release.album else None,
        genres=release.genres,
        year=release.year,
        track_number=track,
        duration_s=duration,
        licence=_licence(release),
    )


def _source_key(key: str, url: str, seen: dict[str, _Seen]) -> str:
    """`key`, stable across re-imports; some releases number two different files alike, and
    the later one is told apart by its file name."""
    first = seen.get(key)
    if first is not None and url and first.url != url:
        return f"{key}:{_file_name(url)}"
    return key


async def import_freemusicc(
    db: AsyncSession,
    clock: Clock,
    tracks_csv: Path,
    releases_csv: Path | None = None,
    *,
    batch: int = 1000,
    on_progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Parses and writes the export in one transaction (see `import_rows`)."""
    return await import_rows(
        db,
        clock,
        parse_freemusicc(tracks_csv, releases_csv),
        total=count_rows(tracks_csv),
        batch=batch,
        on_progress=on_progress,
    )


async def import_csv_catalog(
    db: AsyncSession,
    clock: Clock,
    tracks_csv: Path,
    releases_csv: Path | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """`import_freemusicc` in the shape `onair catalog import-csv` prints: the number imported
    and (where, reason) per rejected row."""
    summary = await import_freemusicc(db, clock, tracks_csv, releases_csv, on_progress=on_progress)
    return summary.imported, [(r.where, r.reason) for r in summary.rejected]
