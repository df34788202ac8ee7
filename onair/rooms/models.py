from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ColumnElement, Enum, ForeignKey, Index, Integer, String, and_, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onair.accounts.models import User
from onair.db.base import Base, UTCDateTime

MAX_MESSAGE = 500


class ChatMessage(Base):
    """One chat message, stored before anyone is told it was sent.

    A message the filters held back (`held_reason`) is seen only by its author and the crew
    until the crew releases or deletes it; a deleted one stays for reports and the audit log.
    """

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_show_id_id", "show_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(MAX_MESSAGE))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_reason: Mapped[str | None] = mapped_column(String(32))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])


class RoomSettings(Base):
    """What the crew set for a show's room: the pinned message and slow mode."""

    __tablename__ = "room_settings"

    show_id: Mapped[int] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    pinned_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="SET NULL")
    )
    slow_mode_s: Mapped[int] = mapped_column(Integer, default=0)


class SanctionKind(enum.StrEnum):
    timeout = "timeout"  # may read, may not chat, until `until`
    removed = "removed"  # out of this show's room
    banned = "banned"  # out of every show of this host


class RoomSanction(Base):
    """A room moderation decision about one user: a show's (`show_id`) or a host's (`host_id`)."""

    __tablename__ = "room_sanctions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SanctionKind] = mapped_column(Enum(SanctionKind, native_enum=False, length=16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[int | None] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), index=True
    )
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(500), default="")
    lifted: Mapped[bool] = mapped_column(Boolean, default=False)

    @classmethod
    def holding(cls, show_id: int, host_id: int, now: datetime) -> ColumnElement[bool]:
        """The sanctions that hold in a show now: its own and its host's bans, neither lifted
        nor lapsed."""
        return and_(
            cls.lifted.is_(False),
            or_(cls.until.is_(None), cls.until > now),
            or_(
                cls.show_id == show_id,
                (cls.host_id == host_id) & (cls.kind == SanctionKind.banned),
            ),
        )
