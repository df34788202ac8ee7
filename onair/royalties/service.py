"""Writing the play log as songs are heard. Rows are written when a song starts, so a crash
loses at most the running totals since the last update, never the play itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.royalties.models import PlayLog


async def play_started(
    db: AsyncSession,
    *,
    show_id: int,
    track_id: int,
    queue_item_id: int | None,
    started_at: datetime,
    listeners: int,
    auto_dj: bool,
) -> int:
    row = PlayLog(
        show_id=show_id,
        track_id=track_id,
        queue_item_id=queue_item_id,
        started_at=started_at,
        listeners_at_start=listeners,
        peak_listeners=listeners,
        performances=listeners,
        seconds_played=0.0,
        listener_seconds=0.0,
        auto_dj=auto_dj,
        skipped=False,
    )
    db.add(row)
    await db.commit()
    return row.id


async def play_progress(
    db: AsyncSession,
    play_id: int,
    *,
    seconds_played: float,
    listener_seconds: float,
    peak_listeners: int,
    performances: int | None = None,
    ended_at: datetime | None = None,
    skipped: bool = False,
    end_reason: str | None = None,
) -> None:
    row = await db.get(PlayLog, play_id)
    if row is None:
        return
    row.seconds_played = seconds_played
    row.listener_seconds = listener_seconds
    row.peak_listeners = max(row.peak_listeners, peak_listeners)
    if performances is not None:
        row.performances = max(row.performances, performances)
    if ended_at is not None:
        row.ended_at = ended_at
        row.skipped = skipped
        row.end_reason = end_reason
    await db.commit()


async def plays_of_show(db: AsyncSession, show_id: int) -> list[PlayLog]:
    stmt = select(PlayLog).where(PlayLog.show_id == show_id).order_by(PlayLog.started_at)
    return list(await db.scalars(stmt))
