"""Each show's secret source key: the password DJ software gives the source ingest.

A key is made the first time the crew asks for it and can be rotated at will (the old one stops
working at once; a source already connected stays on air). Keys never leave the crew's API
(`onair.live.source_router`); listeners never see them.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from onair.clock import Clock
from onair.db.base import Base, UTCDateTime
from onair.shows.models import Show

__all__ = ["SOURCE_USER", "SourceKey", "check_key", "source_key"]

SOURCE_USER = "source"
"""The user name every Icecast source client sends by default."""
KEY_BYTES = 24  # 32 URL-safe characters, 192 bits


class SourceKey(Base):
    __tablename__ = "source_keys"

    show_id: Mapped[int] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


async def source_key(db: AsyncSession, clock: Clock, show: Show, *, rotate: bool = False) -> str:
    """The show's key, made on first use; `rotate` replaces it with a new one."""
    row = await db.get(SourceKey, show.id)
    if row is None:
        row = SourceKey(show_id=show.id, key=_new_key(), created_at=clock.now())
        db.add(row)
    elif rotate:
        row.key = _new_key()
        row.created_at = clock.now()
    await db.commit()
    return row.key


async def check_key(db: AsyncSession, show_id: int, given: str) -> bool:
    """Whether `given` is the show's key, compared in constant time."""
    row = await db.get(SourceKey, show_id)
    if row is None:
        # Compared anyway, so a show without a key answers in the same time as a wrong key.
        hmac.compare_digest(given.encode(), _new_key().encode())
        return False
    return hmac.compare_digest(given.encode(), row.key.encode())
