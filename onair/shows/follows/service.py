"""Following hosts, reading notifications and the calendar feeds' secrets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.clock import Clock
from onair.errors import ApiError, not_found
from onair.shows.follows.models import CalendarFeed, Follow, Notification
from onair.shows.follows.schemas import NotificationOut
from onair.shows.models import Show, ShowStatus
from onair.shows.service import OVERDUE

NOTIFICATIONS_PAGE = 50
CATCH_UP = 50
"""Notifications a reconnecting stream is sent again at most (it asks with Last-Event-ID)."""
FEED_LIMIT = 500
TOKEN_BYTES = 32


@dataclass(frozen=True)
class FollowView:
    """What a page shows by a host's name: how many follow them and whether the viewer does."""

    host_id: int
    followers: int
    following: bool
    can_follow: bool
    """Signed in and not the host: the button works."""


async def host_of(db: AsyncSession, user_id: int) -> User:
    host = await db.get(User, user_id)
    if host is None or host.banned_at is not None:
        raise not_found("user")
    return host


async def follow(db: AsyncSession, clock: Clock, follower: User, host: User) -> None:
    """Idempotent: following someone you follow already changes nothing."""
    if follower.id == host.id:
        raise ApiError(422, "invalid", "you cannot follow yourself")
    values = {"follower_id": follower.id, "host_id": host.id, "created_at": clock.now()}
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(insert(Follow).values(values).on_conflict_do_nothing())


async def unfollow(db: AsyncSession, follower: User, host: User) -> None:
    follow_row = await db.get(Follow, (follower.id, host.id))
    if follow_row is not None:
        await db.delete(follow_row)
        await db.flush()


async def follower_count(db: AsyncSession, host_id: int) -> int:
    count = await db.scalar(
        select(func.count()).select_from(Follow).where(Follow.host_id == host_id)
    )
    return count or 0


async def is_following(db: AsyncSession, follower_id: int, host_id: int) -> bool:
    return await db.get(Follow, (follower_id, host_id)) is not None


async def follow_view(db: AsyncSession, viewer: User | None, host_id: int) -> FollowView:
    mine = viewer is not None and viewer.id != host_id
    return FollowView(
        host_id=host_id,
        followers=await follower_count(db, host_id),
        following=mine and viewer is not None and await is_following(db, viewer.id, host_id),
        can_follow=mine,
    )


async def followed(db: AsyncSession, follower: User) -> list[tuple[User, datetime]]:
    """Whom `follower` follows, latest first."""
    rows = await db.execute(
        select(User, Follow.created_at)
        .join(Follow, Follow.host_id == User.id)
        .where(Follow.follower_id == follower.id, User.banned_at.is_(None))
        .order_by(Follow.created_at.desc(), User.id.desc())
    )
    return [(user, since) for user, since in rows]


async def followers(db: AsyncSession, host: User, *, limit: int, offset: int) -> list[User]:
    found = await db.scalars(
        select(User)
        .join(Follow, Follow.follower_id == User.id)
        .where(Follow.host_id == host.id)
        .order_by(Follow.created_at.desc(), User.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(found)


# Notifications ------------------------------------------------------------------------------


async def unread_count(db: AsyncSession, user_id: int) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return count or 0


async def notifications(
    db: AsyncSession,
    user_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = NOTIFICATIONS_PAGE,
) -> list[NotificationOut]:
    """Latest first; `before` pages back, `after` is what a reconnecting stream missed."""
    stmt = (
        select(Notification, Show, User)
        .join(Show, Show.id == Notification.show_id)
        .join(User, User.id == Notification.host_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    if after is not None:
        stmt = stmt.where(Notification.id > after)
    rows = (await db.execute(stmt)).unique()
    return [
        NotificationOut.about(
            note.id, note.kind, show, note.created_at, host=host, read=note.read_at is not None
        )
        for note, show, host in rows
    ]


async def mark_read(db: AsyncSession, clock: Clock, user_id: int, ids: list[int] | None) -> None:
    stmt = (
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=clock.now())
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    await db.execute(stmt)


# The calendar --------------------------------------------------------------------------------


async def calendar_token(db: AsyncSession, user_id: int) -> str | None:
    feed = await db.get(CalendarFeed, user_id)
    return feed.token if feed else None


async def new_calendar_token(db: AsyncSession, clock: Clock, user: User) -> str:
    """A fresh secret for the user's feed; the old link stops working at once."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feed = await db.get(CalendarFeed, user.id)
    if feed is None:
        db.add(CalendarFeed(user_id=user.id, token=token, created_at=clock.now()))
    else:
        feed.token, feed.created_at = token, clock.now()
    await db.flush()
    return token


async def feed_owner(db: AsyncSession, token: str, now: datetime) -> User:
    user = await db.scalar(
        select(User)
        .join(CalendarFeed, CalendarFeed.user_id == User.id)
        .where(CalendarFeed.token == token)
    )
    if user is None or user.barred(now) is not None:
        raise not_found("calendar")
    return user


async def upcoming_followed(db: AsyncSession, user: User, now: datetime) -> list[Show]:
    """The shows of the hosts `user` follows that are live or have a start to come (a host
    running late is still coming, up to OVERDUE); ended and cancelled ones are gone, and so
    are a banned host's."""
    stmt = (
        select(Show)
        .join(Follow, Follow.host_id == Show.host_id)
        .join(User, User.id == Show.host_id)
        .where(
            Follow.follower_id == user.id,
            User.banned_at.is_(None),
            or_(
                Show.status == ShowStatus.live,
                (Show.status == ShowStatus.scheduled) & (Show.scheduled_start >= now - OVERDUE),
            ),
        )
        .order_by(func.coalesce(Show.started_at, Show.scheduled_start), Show.id)
        .limit(FEED_LIMIT)
    )
    return list((await db.scalars(stmt)).unique())
