from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.accounts.models import User
from onair.catalog.models import Track
from onair.db.base import Base, UTCDateTime

MAX_DEDICATION = 200


class RequestState(enum.StrEnum):
    open = "open"
    queued = "queued"
    dismissed = "dismissed"


class SongRequest(Base):
    __tablename__ = "song_requests"
    __table_args__ = (Index("ix_song_requests_show_id_state", "show_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"))
    dedication: Mapped[str] = mapped_column(String(MAX_DEDICATION), default="")
    state: Mapped[RequestState] = mapped_column(
        Enum(RequestState, native_enum=False, length=16), default=RequestState.open
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])
    track: Mapped[Track] = relationship(lazy="joined")
