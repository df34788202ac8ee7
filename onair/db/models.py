"""Imports every feature's models so the metadata (and Alembic) sees all tables."""

from onair.accounts.models import Session, User
from onair.catalog.models import Album, Artist, Genre, Licence, Track, TrackArtist, TrackGenre
from onair.db.base import Base
from onair.royalties.models import PlayLog
from onair.shows.models import QueueItem, Show, ShowHashtag
from onair.stage.models import CoHost, StageEntry

__all__ = [
    "Album",
    "Artist",
    "Base",
    "CoHost",
    "Genre",
    "Licence",
    "PlayLog",
    "QueueItem",
    "Session",
    "Show",
    "ShowHashtag",
    "StageEntry",
    "Track",
    "TrackArtist",
    "TrackGenre",
    "User",
]
