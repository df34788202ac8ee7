"""Text that one database stores and the other refuses is refused by OnAir on both."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.db.base import TextHasNul


async def test_a_nul_character_is_refused_with_a_422_on_either_database(db: AsyncSession) -> None:
    # PostgreSQL cannot hold U+0000 in text (a 500 from the driver); SQLite would store it.
    with pytest.raises(TextHasNul) as refused:
        await db.scalar(select(User.id).where(User.username == "nul\x00byte"))
    assert (refused.value.status, refused.value.code) == (422, "invalid_text")
    # Text without one goes through.
    assert await db.scalar(select(User.id).where(User.username == "plain")) is None
