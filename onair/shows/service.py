"""Show lifecycle, lists and the show's queue. Only the host (or a moderator) changes a show."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog.models import Genre, Track
from onair.catalog.text import slugify
from onair.clock import Clock
from onair.errors import ApiError, forbidden, not_found
from onair.licensing.service import Licensing, check_insert, refuse, track_problems
from onair.shows.browse import service as browse
from onair.shows.discovery.index import index_show
from onair.shows.models import QueueItem, QueueState, Show, ShowHashtag, ShowStatus

HASHTAG = re.compile(r"^[^\W_][\w]{0,63}$")
MAX_HASHTAGS = 10
MAX_QUEUE = 500
OVERDUE = timedelta(hours=2)


@dataclass(frozen=True)
class ShowFields:
    title: str | None = None
    description: str | None = None
    genre: str | None = None
    hashtags: Sequence[str] | None = None
    scheduled_start: datetime | None = None
    clear_schedule: bool = False
    clean: bool | None = None


def normalise_hashtags(tags: Sequence[str]) -> list[str]:
    out: list[str] = []
    for raw in tags:
        tag = raw.strip().lstrip("#").lower()
        if not tag:
            continue
        if not HASHTAG.match(tag):
            raise ApiError(422, "invalid", f"hashtag {raw!r}: letters, digits and underscores only")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_HASHTAGS:
        raise ApiError(422, "invalid", f"at most {MAX_HASHTAGS} hashtags")
    return out


async def _genre(db: AsyncSession, name: str) -> Genre:
    name = name.strip()
    slug = slugify(name)
    genre = await db.scalar(select(Genre).where(Genre.slug == slug))
    if genre is None:
        genre = Genre(name=name[:64], slug=slug)
        db.add(genre)
        await db.flush()
    return genre


async def _apply(db: AsyncSession, show: Show, fields: ShowFields, clock: Clock) -> None:
    if fields.title is not None:
        title = fields.title.strip()
        if not title:
            raise ApiError(422, "invalid", "title: must not be empty")
        show.title = title
    if fields.description is not None:
        show.description = fields.description.strip()
    if fields.genre is not None:
        show.genre = await _genre(db, fields.genre) if fields.genre.strip() else None
    if fields.hashtags is not None:
        show.hashtag_rows = [
            ShowHashtag(tag=t, position=i)
            for i, t in enumerate(normalise_hashtags(fields.hashtags))
        ]
    if fields.scheduled_start is not None:
        if fields.scheduled_start.tzinfo is None:
            raise ApiError(422, "invalid", "scheduled_start: give a time zone (e.g. Z or +01:00)")
        if show.status is ShowStatus.scheduled and fields.scheduled_start < clock.now():
            raise ApiError(422, "invalid", "scheduled_start: must be in the future")
        show.scheduled_start = fields.scheduled_start
    elif fields.clear_schedule:
        show.scheduled_start = None
    if fields.clean is not None:
        show.clean = fields.clean
    show.updated_at = clock.now()


async def create_show(db: AsyncSession, clock: Clock, host: User, fields: ShowFields) -> Show:
    if not fields.title or not fields.title.strip():
        raise ApiError(422, "invalid", "title: must not be empty")
    now = clock.now()
    show = Show(
        host=host,
        host_id=host.id,
        status=ShowStatus.scheduled,
        description="",
        created_at=now,
        updated_at=now,
        hashtag_rows=[],
    )
    db.add(show)
    await _apply(db, show, fields, clock)
    await db.flush()
    await index_show(db, show)
    return show


async def get_show(db: AsyncSession, show_id: int) -> Show:
    show = await db.get(Show, show_id)
    if show is None:
        raise not_found("show")
    return show


def require_host(show: Show, user: User) -> None:
    if show.host_id != user.id and not user.is_moderator:
        raise forbidden("only the show's host can do that")


async def edit_show(db: AsyncSession, clock: Clock, show: Show, fields: ShowFields) -> Show:
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "an ended show cannot be edited")
    await _apply(db, show, fields, clock)
    await db.flush()
    await index_show(db, show)
    return show


async def go_live(db: AsyncSession, clock: Clock, show: Show) -> Show:
    if show.status is ShowStatus.live:
        return show
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "this show has ended; create a new one")
    live_already = await db.scalar(
        select(Show.id).where(Show.host_id == show.host_id, Show.status == ShowStatus.live)
    )
    if live_already is not None:
        raise ApiError(409, "already_live", f"you are already live in show {live_already}")
    show.status = ShowStatus.live
    show.started_at = clock.now()
    show.updated_at = show.started_at
    await db.flush()
    await index_show(db, show)
    return show


async def revert_to_scheduled(db: AsyncSession, show: Show) -> None:
    """Undoes a go-live whose studio never started, so the host can simply try again."""
    show.status = ShowStatus.scheduled
    show.started_at = None
    await db.flush()
    await index_show(db, show)


async def end_show(db: AsyncSession, clock: Clock, show: Show) -> Show:
    if show.status is ShowStatus.ended:
        return show
    now = clock.now()
    show.status = ShowStatus.ended
    show.ended_at = now
    show.updated_at = now
    await db.execute(
        update(QueueItem)
        .where(QueueItem.show_id == show.id, QueueItem.state == QueueState.playing)
        .values(state=QueueState.played)
    )
    await db.execute(
        update(QueueItem)
        .where(QueueItem.show_id == show.id, QueueItem.state == QueueState.queued)
        .values(state=QueueState.skipped)
    )
    await db.flush()
    await index_show(db, show)
    return show


async def list_shows(
    db: AsyncSession,
    *,
    status: str | None = None,
    genre: str | None = None,
    host: str | None = None,
    hashtag: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Show]:
    """`status` is live, upcoming (soonest first), recent (latest ended first) or None (all).

    Upcoming shows are dated ones at most OVERDUE past their start (a host running late is still
    coming up, one who never showed up is not), then undated ones.

    `genre` lists the shows that claim it and those that mostly play it, ranked by how much
    of what they played is in it (browse.genre_rank), unless `sort` says otherwise.
    `sort="listeners"` puts the most listened first (live shows' counts; then peaks).

    The page's ids are found first, then its shows loaded: the host and genre the shows are
    loaded with would otherwise be joined to every candidate before the sort.
    """
    stmt = select(Show.id)
    natural: tuple[Any, ...]
    if status == "live":
        natural = (Show.started_at.desc(), Show.id.desc())
        stmt = stmt.where(Show.status == ShowStatus.live)
    elif status == "upcoming":
        if now is None:
            raise ValueError("upcoming needs the current time")
        stmt = stmt.where(
            Show.status == ShowStatus.scheduled,
            or_(Show.scheduled_start.is_(None), Show.scheduled_start >= now - OVERDUE),
        )
        natural = (Show.scheduled_start.is_(None), Show.scheduled_start, Show.id)
    elif status == "recent":
        natural = (Show.ended_at.desc(), Show.id.desc())
        stmt = stmt.where(Show.status == ShowStatus.ended)
    else:
        natural = (Show.updated_at.desc(), Show.id.desc())
    order: list[Any] = []
    if sort == "listeners":
        order += browse.by_listeners()
    if genre:
        genre_id = await db.scalar(select(Genre.id).where(Genre.slug == slugify(genre)))
        if genre_id is None:
            return []
        rank = browse.genre_rank(genre_id)
        played = rank.seconds
        stmt = stmt.outerjoin(
            played, and_(played.show_id == Show.id, played.genre_id == genre_id)
        ).where(rank.where)
        if sort in (None, "match") and status != "upcoming":
            order += rank.order
    if host:
        stmt = stmt.join(User, Show.host_id == User.id).where(User.username == host.lower())
    if hashtag:
        tag = hashtag.strip().lstrip("#").lower()
        stmt = stmt.join(ShowHashtag, ShowHashtag.show_id == Show.id).where(ShowHashtag.tag == tag)
    stmt = stmt.order_by(*order, *natural)
    ids = list(await db.scalars(stmt.limit(limit).offset(offset)))
    if not ids:
        return []
    loaded = {s.id: s for s in (await db.scalars(select(Show).where(Show.id.in_(ids)))).unique()}
    return [loaded[i] for i in ids if i in loaded]


# The queue --------------------------------------------------------------------------------


async def queue_items(db: AsyncSession, show: Show) -> list[QueueItem]:
    stmt = (
        select(QueueItem)
        .where(
            QueueItem.show_id == show.id,
            QueueItem.state.in_([QueueState.queued, QueueState.playing]),
        )
        .order_by(QueueItem.position)
    )
    return list((await db.scalars(stmt)).unique())


async def now_playing(db: AsyncSession, show: Show) -> QueueItem | None:
    stmt = select(QueueItem).where(
        QueueItem.show_id == show.id, QueueItem.state == QueueState.playing
    )
    return (await db.scalars(stmt)).unique().first()


async def check_queueable(
    db: AsyncSession, show: Show, track_id: int, licensing: Licensing
) -> Track:
    """The track `track_id` if it may go on the show's queue now, else the refusal.

    Song requests ask the same, so a rule added here (licences) holds for both.
    """
    _require_open(show)
    track = await db.get(Track, track_id)
    if track is None:
        raise not_found("track")
    if not track.playable:
        raise ApiError(409, "not_playable", f"{track.title!r} has no audio file (metadata only)")
    refuse(track_problems(licensing, show, track, licensing.clock.now()), track.title)
    return track


async def add_to_queue(
    db: AsyncSession,
    clock: Clock,
    show: Show,
    user: User,
    track_id: int,
    position: int | None,
    licensing: Licensing,
) -> QueueItem:
    track = await check_queueable(db, show, track_id, licensing)
    if licensing.block:
        refuse(await check_insert(db, licensing, show, track, position), track.title)
    items = await queue_items(db, show)
    if len(items) >= MAX_QUEUE:
        raise ApiError(409, "queue_full", f"the queue holds at most {MAX_QUEUE} songs")
    last = await db.scalar(select(func.max(QueueItem.position)).where(QueueItem.show_id == show.id))
    item = QueueItem(
        show_id=show.id,
        track=track,
        track_id=track.id,
        position=(last or 0) + 1,
        state=QueueState.queued,
        added_by=user.id,
        added_at=clock.now(),
    )
    db.add(item)
    await db.flush()
    if position is not None:
        order = [i.id for i in items if i.state is QueueState.queued]
        order.insert(max(0, min(position, len(order))), item.id)
        await reorder_queue(db, show, order)
    return item


def _require_open(show: Show) -> None:
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "the show has ended")


async def remove_from_queue(db: AsyncSession, show: Show, item_id: int) -> None:
    _require_open(show)
    item = await db.get(QueueItem, item_id)
    if item is None or item.show_id != show.id or item.state is not QueueState.queued:
        raise not_found("queued song")
    await db.delete(item)
    await db.flush()


async def reorder_queue(db: AsyncSession, show: Show, item_ids: Sequence[int]) -> list[QueueItem]:
    """Puts the queued (not yet playing) songs in the given order; every one must be named once."""
    _require_open(show)
    items = await queue_items(db, show)
    waiting = {i.id: i for i in items if i.state is QueueState.queued}
    if sorted(item_ids) != sorted(waiting):
        raise ApiError(
            422, "invalid", "item_ids: name every queued song exactly once (refresh the queue)"
        )
    top = await db.scalar(select(func.max(QueueItem.position)).where(QueueItem.show_id == show.id))
    done = await db.scalar(
        select(func.max(QueueItem.position)).where(
            QueueItem.show_id == show.id, QueueItem.state != QueueState.queued
        )
    )
    # Positions are unique per show, so move the songs out of the way before renumbering.
    for offset, item in enumerate(waiting.values()):
        item.position = (top or 0) + len(waiting) + 1 + offset
    await db.flush()
    start = (done or 0) + 1
    for offset, item_id in enumerate(item_ids):
        waiting[item_id].position = start + offset
    await db.flush()
    return await queue_items(db, show)
