"""Writing tracks into the catalog (every importer goes through here) and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from onair.catalog import search
from onair.catalog.models import Album, Artist, Genre, Licence, Track, TrackArtist, TrackGenre
from onair.catalog.text import slugify
from onair.clock import Clock


@dataclass(frozen=True)
class LicenceTerms:
    territories: tuple[str, ...] = ("*",)
    starts_on: date | None = None
    ends_on: date | None = None
    on_demand_allowed: bool = False
    label: str | None = None
    licence_url: str | None = None


@dataclass(frozen=True)
class TrackInput:
    """A validated track ready to be written; importers build these and reject what they cannot."""

    source: str
    source_key: str
    title: str
    artists: tuple[str, ...]
    album: str | None = None
    album_artist: str | None = None
    genres: tuple[str, ...] = ()
    year: int | None = None
    track_number: int | None = None
    duration_s: float | None = None
    isrc: str | None = None
    explicit: bool = False
    loudness_lufs: float | None = None
    audio_path: str | None = None
    artwork_path: str | None = None
    licence: LicenceTerms = field(default_factory=LicenceTerms)


class CatalogWriter:
    """Upserts tracks by source key, caching artists, genres and albums for a whole import."""

    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._artists: dict[str, Artist] = {}
        self._genres: dict[str, Genre] = {}
        self._albums: dict[str, Album] = {}

    async def write(self, items: Sequence[TrackInput]) -> list[Track]:
        # Related rows first, for the whole batch: their lookups flush, so no track may be
        # half-filled in the session while they run.
        for item in items:
            if item.album:
                await self._album(item)
            for name in item.artists:
                await self._artist(name)
            for name in item.genres:
                await self._genre(name)
        keys = [item.source_key for item in items]
        existing = {
            t.source_key: t
            for t in (
                await self._db.scalars(
                    select(Track).where(Track.source_key.in_(keys)).options(selectinload("*"))
                )
            ).unique()
        }
        tracks = []
        for item in items:
            track = existing.get(item.source_key)
            if track is None:
                track = Track(source_key=item.source_key, created_at=self._clock.now())
                self._fill(track, item)
                self._db.add(track)
            else:
                self._fill(track, item)
            tracks.append(track)
        await self._db.flush()
        await search.index_tracks(self._db, tracks)
        return tracks

    def _fill(self, track: Track, item: TrackInput) -> None:
        track.source = item.source
        track.title = item.title
        track.track_number = item.track_number
        track.year = item.year
        track.duration_s = item.duration_s
        track.isrc = item.isrc
        track.explicit = item.explicit
        track.loudness_lufs = item.loudness_lufs
        track.audio_path = item.audio_path
        track.artwork_path = item.artwork_path
        track.album = self._albums[self._album_key(item)] if item.album else None
        artists = [self._artists[name] for name in dict.fromkeys(item.artists)]
        track.artist_links = [
            TrackArtist(artist=a, artist_id=a.id, position=i) for i, a in enumerate(artists)
        ]
        genres = {g.id: g for g in (self._genres[slugify(name)] for name in item.genres)}
        track.genre_links = [TrackGenre(genre=g, genre_id=g.id) for g in genres.values()]
        terms = item.licence
        licence = track.licence or Licence()
        licence.territories = ",".join(terms.territories) or "*"
        licence.starts_on = terms.starts_on
        licence.ends_on = terms.ends_on
        licence.on_demand_allowed = terms.on_demand_allowed
        licence.label = terms.label
        licence.licence_url = terms.licence_url
        track.licence = licence

    async def _artist(self, name: str) -> Artist:
        if name in self._artists:
            return self._artists[name]
        artist = await self._db.scalar(select(Artist).where(Artist.name == name))
        if artist is None:
            artist = Artist(name=name)
            self._db.add(artist)
            await self._db.flush()
        self._artists[name] = artist
        return artist

    async def _genre(self, name: str) -> Genre:
        slug = slugify(name)
        if slug in self._genres:
            return self._genres[slug]
        genre = await self._db.scalar(select(Genre).where(Genre.slug == slug))
        if genre is None:
            genre = Genre(name=name, slug=slug)
            self._db.add(genre)
            await self._db.flush()
        self._genres[slug] = genre
        return genre

    @staticmethod
    def _album_key(item: TrackInput) -> str:
        artist = item.album_artist or (item.artists[0] if item.artists else "")
        return f"{item.source}:{slugify(artist)}:{slugify(item.album or '')}"

    async def _album(self, item: TrackInput) -> Album:
        artist = item.album_artist or (item.artists[0] if item.artists else "")
        key = self._album_key(item)
        if key in self._albums:
            return self._albums[key]
        album = await self._db.scalar(select(Album).where(Album.source_key == key))
        if album is None:
            album = Album(source_key=key, title=item.album or "", artist_name=artist)
            self._db.add(album)
        album.year = item.year if item.year is not None else album.year
        album.label = item.licence.label or album.label
        await self._db.flush()
        self._albums[key] = album
        return album


async def get_track(db: AsyncSession, track_id: int) -> Track | None:
    return await db.get(Track, track_id)


async def tracks_by_ids(db: AsyncSession, ids: Iterable[int]) -> list[Track]:
    """Tracks in the order of `ids` (search ranks them; the database would not keep that order)."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = {t.id: t for t in (await db.scalars(select(Track).where(Track.id.in_(wanted)))).unique()}
    return [rows[i] for i in wanted if i in rows]


async def list_genres(db: AsyncSession) -> list[Genre]:
    return list(await db.scalars(select(Genre).order_by(Genre.name)))
