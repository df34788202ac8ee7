"""Writing tracks into the catalog (every importer goes through here) and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from onair.catalog import search
from onair.catalog.models import Album, Artist, Genre, Licence, Track, TrackArtist, TrackGenre
from onair.catalog.text import slugify
from onair.clock import Clock

T = TypeVar("T")


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
        self._slugs: dict[str, str] = {}

    async def write(self, items: Sequence[TrackInput]) -> list[Track]:
        # Related rows first, for the whole batch: their lookups flush, so no track may be
        # half-filled in the session while they run.
        await self._prefetch(items)
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
        changed: list[Track] = []
        for item in items:
            track = existing.get(item.source_key)
            # Re-importing a catalog mostly rewrites tracks as they are: the unit of work spent
            # most of a re-import replacing their links with equal ones, and the search index
            # the rest deleting and re-adding the same words.
            if track is not None and not self._unchanged(track, item):
                self._fill(track, item)
                changed.append(track)
        await self._db.flush()
        created = await self._insert_new([i for i in items if i.source_key not in existing])
        tracks = [existing.get(i.source_key) or created[i.source_key] for i in items]
        await search.index_tracks(self._db, [*changed, *created.values()])
        return tracks

    async def _insert_new(self, items: Sequence[TrackInput]) -> dict[str, Track]:
        """New tracks by bulk INSERT, then loaded back: the ORM's unit of work inserts them (and
        their licences) one row and one round trip at a time, which dominated big imports."""
        if not items:
            return {}
        now = self._clock.now()
        rows = [
            {
                "source": item.source,
                "source_key": item.source_key,
                "title": item.title,
                "album_id": self._albums[self._album_key(item)].id if item.album else None,
                "track_number": item.track_number,
                "year": item.year,
                "duration_s": item.duration_s,
                "isrc": item.isrc,
                "explicit": item.explicit,
                "loudness_lufs": item.loudness_lufs,
                "audio_path": item.audio_path,
                "artwork_path": item.artwork_path,
                "created_at": now,
            }
            for item in items
        ]
        ids: dict[str, int] = {}
        for chunk in _chunks(rows):
            result = await self._db.execute(
                insert(Track).returning(Track.id, Track.source_key), list(chunk)
            )
            ids.update((key, track_id) for track_id, key in result.all())
        licences: list[dict[str, Any]] = []
        artist_links: list[dict[str, Any]] = []
        genre_links: list[dict[str, Any]] = []
        for item in items:
            track_id = ids[item.source_key]
            terms = item.licence
            licences.append(
                {
                    "track_id": track_id,
                    "territories": ",".join(terms.territories) or "*",
                    "starts_on": terms.starts_on,
                    "ends_on": terms.ends_on,
                    "on_demand_allowed": terms.on_demand_allowed,
                    "label": terms.label,
                    "licence_url": terms.licence_url,
                }
            )
            for position, name in enumerate(dict.fromkeys(item.artists)):
                artist_links.append(
                    {
                        "track_id": track_id,
                        "artist_id": self._artists[name].id,
                        "position": position,
                    }
                )
            genre_ids = dict.fromkeys(self._genres[self._slug(name)].id for name in item.genres)
            genre_links.extend({"track_id": track_id, "genre_id": g} for g in genre_ids)
        for table, values in (
            (Licence, licences),
            (TrackArtist, artist_links),
            (TrackGenre, genre_links),
        ):
            if values:
                await self._db.execute(insert(table), values)
        loaded: dict[int, Track] = {}
        for id_chunk in _chunks(list(ids.values())):
            for track in (
                await self._db.scalars(select(Track).where(Track.id.in_(id_chunk)))
            ).unique():
                loaded[track.id] = track
        return {key: loaded[track_id] for key, track_id in ids.items()}

    async def _prefetch(self, items: Sequence[TrackInput]) -> None:
        """Loads or creates the batch's uncached artists, genres and albums with a few bulk
        statements, instead of a query, an INSERT and a flush per name (minutes on a big
        import)."""
        names = sorted({n for item in items for n in item.artists} - self._artists.keys())
        genre_names: dict[str, str] = {}
        for item in items:
            for name in item.genres:
                genre_names.setdefault(self._slug(name), name)
        slugs = sorted(genre_names.keys() - self._genres.keys())
        album_items: dict[str, TrackInput] = {}
        for item in items:
            if item.album:
                album_items.setdefault(self._album_key(item), item)
        album_keys = sorted(album_items.keys() - self._albums.keys())

        await self._load_artists(names)
        if missing := [n for n in names if n not in self._artists]:
            await self._db.execute(insert(Artist), [{"name": n} for n in missing])
            await self._load_artists(missing)
            await search.index_artists(self._db, [(self._artists[n].id, n) for n in missing])
        await self._load_genres(slugs)
        if missing := [s for s in slugs if s not in self._genres]:
            await self._db.execute(
                insert(Genre), [{"name": genre_names[s], "slug": s} for s in missing]
            )
            await self._load_genres(missing)
        await self._load_albums(album_keys)
        for key in album_keys:
            if key in self._albums:
                # Same rule as `_album`: the batch's first track brings the album's details.
                album, item = self._albums[key], album_items[key]
                album.year = item.year if item.year is not None else album.year
                album.label = item.licence.label or album.label
        if missing := [k for k in album_keys if k not in self._albums]:
            rows: list[dict[str, Any]] = []
            for key in missing:
                item = album_items[key]
                by = item.album_artist or (item.artists[0] if item.artists else "")
                rows.append(
                    {
                        "source_key": key,
                        "title": item.album or "",
                        "artist_name": by,
                        "year": item.year,
                        "label": item.licence.label,
                    }
                )
            await self._db.execute(insert(Album), rows)
            await self._load_albums(missing)

    async def _load_artists(self, names: Sequence[str]) -> None:
        for chunk in _chunks(names):
            for artist in await self._db.scalars(select(Artist).where(Artist.name.in_(chunk))):
                self._artists[artist.name] = artist

    async def _load_genres(self, slugs: Sequence[str]) -> None:
        for chunk in _chunks(slugs):
            for genre in await self._db.scalars(select(Genre).where(Genre.slug.in_(chunk))):
                self._genres[genre.slug] = genre

    async def _load_albums(self, keys: Sequence[str]) -> None:
        for chunk in _chunks(keys):
            for album in await self._db.scalars(select(Album).where(Album.source_key.in_(chunk))):
                self._albums[album.source_key] = album

    def _unchanged(self, track: Track, item: TrackInput) -> bool:
        album = self._albums[self._album_key(item)] if item.album else None
        genre_ids = {self._genres[self._slug(name)].id for name in item.genres}
        terms, licence = item.licence, track.licence
        return (
            (track.source, track.title, track.track_number, track.year, track.duration_s)
            == (item.source, item.title, item.track_number, item.year, item.duration_s)
            and (track.isrc, track.explicit, track.loudness_lufs)
            == (item.isrc, item.explicit, item.loudness_lufs)
            and (track.audio_path, track.artwork_path) == (item.audio_path, item.artwork_path)
            and track.album_id == (album.id if album else None)
            and track.artists == list(dict.fromkeys(item.artists))
            and {link.genre_id for link in track.genre_links} == genre_ids
            and licence is not None
            and (licence.territories, licence.starts_on, licence.ends_on)
            == (",".join(terms.territories) or "*", terms.starts_on, terms.ends_on)
            and (licence.on_demand_allowed, licence.label, licence.licence_url)
            == (terms.on_demand_allowed, terms.label, terms.licence_url)
        )

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
        genres = {g.id: g for g in (self._genres[self._slug(name)] for name in item.genres)}
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
            await search.index_artists(self._db, [(artist.id, name)])
        self._artists[name] = artist
        return artist

    async def _genre(self, name: str) -> Genre:
        slug = self._slug(name)
        if slug in self._genres:
            return self._genres[slug]
        genre = await self._db.scalar(select(Genre).where(Genre.slug == slug))
        if genre is None:
            genre = Genre(name=name, slug=slug)
            self._db.add(genre)
            await self._db.flush()
        self._genres[slug] = genre
        return genre

    def _slug(self, name: str) -> str:
        # Slugs are asked for several times per track; folding Unicode each time added up.
        slug = self._slugs.get(name)
        if slug is None:
            slug = self._slugs[name] = slugify(name)
        return slug

    def _album_key(self, item: TrackInput) -> str:
        artist = item.album_artist or (item.artists[0] if item.artists else "")
        return f"{item.source}:{self._slug(artist)}:{self._slug(item.album or '')}"

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


def _chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def get_track(db: AsyncSession, track_id: int) -> Track | None:
    return await db.get(Track, track_id)


async def tracks_by_ids(db: AsyncSession, ids: Iterable[int]) -> list[Track]:
    """Tracks in the order of `ids` (search ranks them; the database would not keep that order)."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = {t.id: t for t in (await db.scalars(select(Track).where(Track.id.in_(wanted)))).unique()}
    return [rows[i] for i in wanted if i in rows]


async def artist_names(db: AsyncSession, track_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each track's credited artists' names, in credit order (tracks without any left out)."""
    wanted = list(track_ids)
    names: dict[int, list[str]] = {}
    if not wanted:
        return names
    links = await db.scalars(
        select(TrackArtist)
        .where(TrackArtist.track_id.in_(wanted))
        .order_by(TrackArtist.track_id, TrackArtist.position)
    )
    for link in links.unique():
        names.setdefault(link.track_id, []).append(link.artist.name)
    return names


async def list_genres(db: AsyncSession) -> list[Genre]:
    return list(await db.scalars(select(Genre).order_by(Genre.name)))


async def genre_by_slug(db: AsyncSession, slug: str) -> Genre | None:
    return await db.scalar(select(Genre).where(Genre.slug == slug))
