"""Imports every feature's models so the metadata (and Alembic) sees all tables."""

from onair.accounts.models import Session, User
from onair.catalog.models import Album, Artist, Genre, Licence, Track, TrackArtist, TrackGenre
from onair.cluster.models import ShowPlayhead
from onair.db.base import Base
from onair.media.source_keys import SourceKey
from onair.moderation.models import AuditEntry, CommunityRules, Report
from onair.replays.models import Replay
from onair.requests.models import SongRequest
from onair.restream.models import RestreamDestination
from onair.rooms.models import ChatMessage, RoomSanction, RoomSettings
from onair.royalties.models import ListenerSample, PlayLog
from onair.shows.browse.models import PLAY_LOG_LISTENING, ShowGenreSeconds
from onair.shows.discovery.models import PLAY_LOG_BY_TRACK, PLAY_LOG_ON_AIR
from onair.shows.follows.models import CalendarFeed, Follow, Notification
from onair.shows.models import QueueItem, Show, ShowHashtag
from onair.stage.models import CoHost, StageEntry

__all__ = [
    "PLAY_LOG_BY_TRACK",
    "PLAY_LOG_LISTENING",
    "PLAY_LOG_ON_AIR",
    "Album",
    "Artist",
    "AuditEntry",
    "Base",
    "CalendarFeed",
    "ChatMessage",
    "CoHost",
    "CommunityRules",
    "Follow",
    "Genre",
    "Licence",
    "ListenerSample",
    "Notification",
    "PlayLog",
    "QueueItem",
    "Replay",
    "Report",
    "RestreamDestination",
    "RoomSanction",
    "RoomSettings",
    "Session",
    "Show",
    "ShowGenreSeconds",
    "ShowHashtag",
    "ShowPlayhead",
    "SongRequest",
    "SourceKey",
    "StageEntry",
    "Track",
    "TrackArtist",
    "TrackGenre",
    "User",
]
