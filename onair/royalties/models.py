from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class PlayLog(Base):
    """One play of one track in one show, from when it was heard until it stopped."""

    __tablename__ = "play_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id"), index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"), index=True)
    queue_item_id: Mapped[int | None] = mapped_column(ForeignKey("queue_items.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seconds_played: Mapped[float] = mapped_column(Float, default=0.0)
    listeners_at_start: Mapped[int] = mapped_column(Integer, default=0)
    listener_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_listeners: Mapped[int] = mapped_column(Integer, default=0)
    auto_dj: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    end_reason: Mapped[str | None] = mapped_column(String(64))
