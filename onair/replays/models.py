from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class ReplayKind(enum.StrEnum):
    talk = "talk"
    """The show with the licensed music cut out: the host's and callers' talk."""
    full = "full"
    """The whole program, music included: only where every song may be played on demand."""


class ReplayState(enum.StrEnum):
    processing = "processing"
    ready = "ready"
    failed = "failed"


class Replay(Base):
    """A published replay of an ended show, cut from its recording; one per show and kind."""

    __tablename__ = "replays"
    __table_args__ = (UniqueConstraint("show_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReplayKind] = mapped_column(Enum(ReplayKind, native_enum=False, length=16))
    state: Mapped[ReplayState] = mapped_column(
        Enum(ReplayState, native_enum=False, length=16), index=True
    )
    error: Mapped[str | None] = mapped_column(String(512))
    audio_path: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    chapters: Mapped[str] = mapped_column(
        Text, default="[]", doc='JSON: [{"startTime": seconds, "title": "..."}, ...]'
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
