"""Saving a studio's playhead, and reading it back into where a new studio resumes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import Track
from onair.cluster.models import ShowPlayhead
from onair.live.autodj import deck_track
from onair.live.station import Playhead, Resume
from onair.royalties.models import PlayLog
from onair.shows.models import QueueItem, QueueState

END_SLACK_S = 1.0
"""A song saved this close to its end is over by the time a new studio would resume it."""
FRESH_S = 5.0
"""A playhead saved longer ago than this is no longer what another node can report as on air
(its studio's node stopped saving: it is gone, or the show moved)."""
REWIND_S = 1.0
"""Listeners hear the program about a second behind the studio (the streams' burst on connect
and the encoders): a song resumed this much before the saved position repeats at most that,
where resuming at the studio's own position would skip what they had not heard yet."""


async def save(db: AsyncSession, show_id: int, node_id: str, playhead: Playhead) -> None:
    row = await db.get(ShowPlayhead, show_id)
    if row is None:
        row = ShowPlayhead(show_id=show_id)
        db.add(row)
    row.queue_item_id = playhead.queue_item_id
    row.track_id = playhead.track_id
    row.position_s = playhead.position_s
    row.play_id = playhead.play_id
    row.node_id = node_id
    row.saved_at = datetime.now(UTC)
    await db.commit()


@dataclasses.dataclass(frozen=True)
class OnAir:
    """What a show's studio on another node had on air when it last saved its playhead."""

    track_id: int | None
    queue_item_id: int | None


async def on_air(db: AsyncSession, show_id: int) -> OnAir | None:
    """The song on air in the show's studio on whichever node runs it, as its fresh playhead
    says (track None: nothing); None when no studio saved one in the last FRESH_S."""
    row = await db.get(ShowPlayhead, show_id, populate_existing=True)
    if row is None or (datetime.now(UTC) - row.saved_at).total_seconds() > FRESH_S:
        return None
    return OnAir(track_id=row.track_id, queue_item_id=row.queue_item_id)


async def resume_point(db: AsyncSession, show_id: int) -> Resume | None:
    """Where the show's last studio was, as a song to start part-way; None when nothing was
    on air (or the song is over, or is no longer the show's to play). Open play-log rows of
    the show other than the one carried on are closed at the playhead's time."""
    row = await db.get(ShowPlayhead, show_id)
    resume = await _resume_of(db, row) if row is not None else None
    if row is not None:
        carried = resume.play_id if resume is not None else None
        await db.execute(
            update(PlayLog)
            .where(
                PlayLog.show_id == show_id,
                PlayLog.ended_at.is_(None),
                PlayLog.id != (carried if carried is not None else -1),
            )
            .values(ended_at=row.saved_at, end_reason="node lost")
        )
        await db.commit()
    return resume


async def _resume_of(db: AsyncSession, row: ShowPlayhead) -> Resume | None:
    if row.track_id is None:
        return None
    track = await db.get(Track, row.track_id)
    if track is None or not track.audio_path:
        return None
    if row.queue_item_id is not None:
        item = await db.get(QueueItem, row.queue_item_id)
        if item is None or item.state is not QueueState.playing:
            return None  # played, skipped or removed since
    if track.duration_s and row.position_s >= track.duration_s - END_SLACK_S:
        return None
    position = max(0.0, row.position_s - REWIND_S)
    start = dataclasses.replace(deck_track(track, row.queue_item_id), start_s=position)
    return Resume(track=start, play_id=row.play_id)
