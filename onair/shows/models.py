from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.accounts.models import User
from onair.catalog.models import Genre, Track
from onair.db.base import Base, UTCDateTime
from onair.shows.browse.models import ShowGenreSeconds


class ShowStatus(enum.StrEnum):
    scheduled = "scheduled"
    live = "live"
    ended = "ended"


class QueueState(enum.StrEnum):
    queued = "queued"
    playing = "playing"
    played = "played"
    skipped = "skipped"


class ShowHashtag(Base):
    __tablename__ = "show_hashtags"

    show_id: Mapped[int] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Show(Base):
    __tablename__ = "shows"
    # Live shows are listed and paged by how many listen now.
    __table_args__ = (Index("ix_shows_status_listeners_now", "status", "listeners_now"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    genre_id: Mapped[int | None] = mapped_column(ForeignKey("genres.id"), index=True)
    status: Mapped[ShowStatus] = mapped_column(
        Enum(ShowStatus, native_enum=False, length=16), index=True
    )
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    cover_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Written by the show's studio when the count changes (at most every few seconds), so the
    # database orders live shows by listeners whichever node runs the studio; 0 once ended.
    listeners_now: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    listeners_peak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    played_seconds: Mapped[float] = mapped_column(
        Float, default=0.0, server_default="0", doc="Music played so far, all genres."
    )
    clean: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0", doc="No explicit songs (licensing)."
    )

    host: Mapped[User] = relationship(lazy="joined")
    genre: Mapped[Genre | None] = relationship(lazy="joined")
    hashtag_rows: Mapped[list[ShowHashtag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by=ShowHashtag.position
    )
    genre_seconds: Mapped[list[ShowGenreSeconds]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def hashtags(self) -> list[str]:
        return [row.tag for row in self.hashtag_rows]


class QueueItem(Base):
    __tablename__ = "queue_items"
    __table_args__ = (UniqueConstraint("show_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"))
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[QueueState] = mapped_column(
        Enum(QueueState, native_enum=False, length=16), default=QueueState.queued
    )
    added_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    skip_reason: Mapped[str | None] = mapped_column(
        String(255), doc="Why a queued song was skipped unplayed (a licence that lapsed)."
    )

    track: Mapped[Track] = relationship(lazy="joined")
