from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.db.base import Base, UTCDateTime


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Genre(Base):
    __tablename__ = "genres"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)


class Album(Base):
    __tablename__ = "albums"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    artist_name: Mapped[str] = mapped_column(String(255))
    year: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(255))
    source_key: Mapped[str] = mapped_column(String(255), unique=True)


class TrackArtist(Base):
    __tablename__ = "track_artists"

    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    artist: Mapped[Artist] = relationship(lazy="joined")


class TrackGenre(Base):
    __tablename__ = "track_genres"

    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    genre_id: Mapped[int] = mapped_column(ForeignKey("genres.id"), primary_key=True, index=True)
    genre: Mapped[Genre] = relationship(lazy="joined")


class Licence(Base):
    """The terms under which a recording may be played."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), unique=True)
    territories: Mapped[str] = mapped_column(
        String(1024), default="*", doc="Comma-separated ISO 3166 codes, or * for worldwide."
    )
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    on_demand_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(255))
    licence_url: Mapped[str | None] = mapped_column(String(512))


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    album_id: Mapped[int | None] = mapped_column(ForeignKey("albums.id"), index=True)
    track_number: Mapped[int | None] = mapped_column(Integer)
    year: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    isrc: Mapped[str | None] = mapped_column(String(12), index=True)
    explicit: Mapped[bool] = mapped_column(Boolean, default=False)
    loudness_lufs: Mapped[float | None] = mapped_column(Float)
    audio_path: Mapped[str | None] = mapped_column(Text)
    artwork_path: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), doc="demo, files or csv")
    source_key: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    album: Mapped[Album | None] = relationship(lazy="joined")
    artist_links: Mapped[list[TrackArtist]] = relationship(
        lazy="selectin", order_by=TrackArtist.position, cascade="all, delete-orphan"
    )
    genre_links: Mapped[list[TrackGenre]] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )
    licence: Mapped[Licence | None] = relationship(
        lazy="joined", cascade="all, delete-orphan", uselist=False
    )

    @property
    def artists(self) -> list[str]:
        return [link.artist.name for link in self.artist_links]

    @property
    def genres(self) -> list[str]:
        return [link.genre.name for link in self.genre_links]

    @property
    def playable(self) -> bool:
        return self.audio_path is not None
