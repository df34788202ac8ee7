from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class Role(enum.StrEnum):
    listener = "listener"
    moderator = "moderator"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16), default=Role.listener
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    banned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    territory: Mapped[str | None] = mapped_column(
        String(2), doc="Where the listener says they are (ISO 3166-1 alpha-2); see licensing."
    )

    @property
    def is_moderator(self) -> bool:
        return self.role in (Role.moderator, Role.admin)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def barred(self, now: datetime) -> str | None:
        """Why this account may not sign in or take part now ("banned", "suspended"), or None."""
        if self.banned_at is not None:
            return "banned"
        if self.suspended_until is not None and self.suspended_until > now:
            return "suspended"
        return None


class Session(Base):
    """A signed-in browser; only a hash of its token is stored, so a leak signs no one in."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
