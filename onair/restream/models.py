"""A host's RTMP destinations: set once, pushed to from every show they choose."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from onair.db.base import Base, UTCDateTime


class RestreamDestination(Base):
    """Where a host's shows may be pushed: a name, an rtmp(s):// URL and a stream key.

    The key is a secret the host copied from Twitch or YouTube; it is kept as it is (it must be
    sent as it is) and answered in full only to its owner, masked in lists.
    """

    __tablename__ = "restream_destinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(String(512))
    stream_key: Mapped[str] = mapped_column(String(512))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    """Pushed to as soon as any of the host's shows goes live."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
