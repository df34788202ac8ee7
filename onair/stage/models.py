from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.accounts.models import User
from onair.db.base import Base, UTCDateTime


class StageState(enum.StrEnum):
    listening = "listening"
    requested = "requested"
    screening = "screening"
    on_air = "on_air"
    dropped = "dropped"


class StageEntry(Base):
    """One listener's place on one show's stage: their call, from the first hand raised on."""

    __tablename__ = "stage_entries"
    __table_args__ = (UniqueConstraint("show_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[StageState] = mapped_column(Enum(StageState, native_enum=False, length=16))
    topic: Mapped[str] = mapped_column(String(140), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    screener_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    host_muted: Mapped[bool] = mapped_column(Boolean, default=False)
    self_muted: Mapped[bool] = mapped_column(Boolean, default=False)
    level_db: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])


class CoHost(Base):
    """A user the host invited to co-host a show; a co-host once they accept."""

    __tablename__ = "show_cohosts"
    __table_args__ = (UniqueConstraint("show_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")
