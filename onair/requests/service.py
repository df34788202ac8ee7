"""Song requests: listeners ask, the crew sees them grouped by song and queues or dismisses them.

A request passes the same checks as a song the host queues (`shows.service.check_queueable`),
so whatever rule that grows (licences) holds for requests too. A listener has at most one open
request per song per show: asking again only changes the dedication.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog.models import Track
from onair.catalog.service import tracks_by_ids
from onair.clock import Clock
from onair.errors import ApiError, not_found
from onair.licensing.service import Licensing
from onair.requests.models import RequestState, SongRequest
from onair.shows import service as shows
from onair.shows.models import QueueItem, QueueState, Show, ShowStatus
from onair.stage import crew

MAX_GROUPS = 200
MAX_MINE = 50


@dataclass(frozen=True)
class Handled:
    """A request the crew queued or dismissed, and whose it was (to tell them)."""

    request_id: int
    user_id: int


@dataclass
class RequestGroup:
    """The open requests for one song: `count` listeners asked, the first at `first_at`."""

    track: Track
    count: int
    first_at: datetime
    last_at: datetime
    in_queue: bool
    requests: list[SongRequest] = field(default_factory=list)
    """One per listener (their latest), oldest first."""


def _open(show: Show) -> list[ColumnElement[bool]]:
    return [SongRequest.show_id == show.id, SongRequest.state == RequestState.open]


async def requestable(
    db: AsyncSession, show: Show, user: User, track_id: int, licensing: Licensing
) -> Track:
    """The song if `user` may request it on `show`; the crew queues songs instead."""
    if await crew.is_crew(db, show, user):
        raise ApiError(409, "is_crew", "you run this show: add the song to the queue instead")
    return await shows.check_queueable(db, show, track_id, licensing)


async def request_song(
    db: AsyncSession, clock: Clock, show: Show, user: User, track: Track, dedication: str
) -> tuple[SongRequest, bool]:
    """Files the request, or updates the dedication of the user's open one for the same song.
    Returns the request and whether it is new."""
    existing = await db.scalar(
        select(SongRequest).where(
            *_open(show), SongRequest.user_id == user.id, SongRequest.track_id == track.id
        )
    )
    if existing is not None:
        existing.dedication = dedication.strip()
        await db.flush()
        return existing, False
    request = SongRequest(
        show_id=show.id,
        user_id=user.id,
        user=user,
        track_id=track.id,
        track=track,
        dedication=dedication.strip(),
        state=RequestState.open,
        created_at=clock.now(),
    )
    db.add(request)
    await db.flush()
    return request, True


async def mine(db: AsyncSession, show: Show, user: User) -> list[SongRequest]:
    stmt = (
        select(SongRequest)
        .where(SongRequest.show_id == show.id, SongRequest.user_id == user.id)
        .order_by(SongRequest.created_at.desc(), SongRequest.id.desc())
        .limit(MAX_MINE)
    )
    return list((await db.scalars(stmt)).unique())


async def withdraw(db: AsyncSession, show: Show, user: User, request_id: int) -> SongRequest:
    """The requester takes back a request the crew has not handled yet."""
    _require_not_ended(show)
    request = await db.get(SongRequest, request_id)
    if request is None or request.show_id != show.id or request.user_id != user.id:
        raise not_found("song request")
    if request.state is not RequestState.open:
        raise ApiError(409, "already_handled", f"the host has already {request.state} it")
    await db.delete(request)
    await db.flush()
    return request


async def open_count(db: AsyncSession, show: Show) -> int:
    return await db.scalar(select(func.count(SongRequest.id)).where(*_open(show))) or 0


async def board(db: AsyncSession, show: Show, limit: int = MAX_GROUPS) -> list[RequestGroup]:
    """Open requests by song, the most asked for first, then the one waiting longest.

    Listeners are counted once per song, even if two of their requests raced each other in.
    """
    listeners = func.count(distinct(SongRequest.user_id))
    first = func.min(SongRequest.created_at)
    stmt = (
        select(SongRequest.track_id, listeners, first, func.max(SongRequest.created_at))
        .where(*_open(show))
        .group_by(SongRequest.track_id)
        .order_by(listeners.desc(), first, SongRequest.track_id)
        .limit(limit)
    )
    rows = (await db.execute(stmt)).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    tracks = {t.id: t for t in await tracks_by_ids(db, ids)}
    queued = set(
        await db.scalars(
            select(QueueItem.track_id).where(
                QueueItem.show_id == show.id,
                QueueItem.state.in_([QueueState.queued, QueueState.playing]),
                QueueItem.track_id.in_(ids),
            )
        )
    )
    groups = {
        track_id: RequestGroup(tracks[track_id], count, first_at, last_at, track_id in queued)
        for track_id, count, first_at, last_at in rows
        if track_id in tracks
    }
    requests = await db.scalars(
        select(SongRequest)
        .where(*_open(show), SongRequest.track_id.in_(ids))
        .order_by(SongRequest.created_at, SongRequest.id)
    )
    for request in requests.unique():
        group = groups[request.track_id]
        group.requests = [r for r in group.requests if r.user_id != request.user_id]
        group.requests.append(request)
    return list(groups.values())


async def queue_requested(
    db: AsyncSession, clock: Clock, show: Show, user: User, track_id: int, licensing: Licensing
) -> list[Handled]:
    """Puts the song on the queue once, as the console's own add does, and marks every open
    request for it queued. Returns the requests it answered."""
    handled = await _claim(db, clock, show, user, track_id, RequestState.queued)
    await shows.add_to_queue(db, clock, show, user, track_id, None, licensing)
    return handled


async def dismiss(
    db: AsyncSession, clock: Clock, show: Show, user: User, track_id: int
) -> list[Handled]:
    """Marks every open request for the song dismissed."""
    return await _claim(db, clock, show, user, track_id, RequestState.dismissed)


async def _claim(
    db: AsyncSession, clock: Clock, show: Show, user: User, track_id: int, state: RequestState
) -> list[Handled]:
    # Claimed by one UPDATE before anything else happens, so two of the crew pressing at once
    # queue the song once: the second finds nothing left open. A refusal rolls it back.
    _require_not_ended(show)
    claimed = await db.execute(
        update(SongRequest)
        .where(*_open(show), SongRequest.track_id == track_id)
        .values(state=state, handled_by=user.id, handled_at=clock.now())
        .returning(SongRequest.id, SongRequest.user_id)
        .execution_options(synchronize_session=False)
    )
    handled = [Handled(request_id, user_id) for request_id, user_id in claimed]
    if not handled:
        raise not_found("open request for that song")
    return handled


def _require_not_ended(show: Show) -> None:
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "the show has ended")
