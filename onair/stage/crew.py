"""Who runs a show: its host, the co-hosts who accepted the host's invitation, and moderators."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.accounts.service import user_by_username
from onair.clock import Clock
from onair.errors import ApiError, forbidden, not_found
from onair.shows.models import Show, ShowStatus
from onair.stage.models import CoHost


async def cohosts(db: AsyncSession, show_id: int) -> list[CoHost]:
    """Invited and accepted co-hosts, in the order they were invited."""
    stmt = select(CoHost).where(CoHost.show_id == show_id).order_by(CoHost.invited_at, CoHost.id)
    return list((await db.scalars(stmt)).unique().all())


async def accepted_ids(db: AsyncSession, show_id: int) -> set[int]:
    stmt = select(CoHost.user_id).where(CoHost.show_id == show_id, CoHost.accepted_at.is_not(None))
    return set(await db.scalars(stmt))


async def is_crew(db: AsyncSession, show: Show, user: User) -> bool:
    if show.host_id == user.id or user.is_moderator:
        return True
    return user.id in await accepted_ids(db, show.id)


async def require_crew(db: AsyncSession, show: Show, user: User) -> None:
    """The host, a co-host or a moderator; anyone else is refused."""
    if not await is_crew(db, show, user):
        raise forbidden("only the show's host and co-hosts can do that")


async def invite(db: AsyncSession, clock: Clock, show: Show, username: str, limit: int) -> CoHost:
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "an ended show takes no co-hosts")
    user = await user_by_username(db, username)
    if user is None:
        raise not_found("user")
    if user.id == show.host_id:
        raise ApiError(409, "is_host", "the host is already the host")
    existing = await cohosts(db, show.id)
    if any(c.user_id == user.id for c in existing):
        raise ApiError(409, "already_invited", f"{user.username} is already invited")
    if len(existing) >= limit:
        raise ApiError(409, "too_many_cohosts", f"a show has at most {limit} co-hosts")
    cohost = CoHost(show_id=show.id, user_id=user.id, invited_at=clock.now(), user=user)
    db.add(cohost)
    await db.flush()
    return cohost


async def accept(db: AsyncSession, clock: Clock, show: Show, user: User) -> CoHost:
    cohost = await db.scalar(
        select(CoHost).where(CoHost.show_id == show.id, CoHost.user_id == user.id)
    )
    if cohost is None:
        raise not_found("invitation")
    if cohost.accepted_at is None:
        cohost.accepted_at = clock.now()
    await db.flush()
    return cohost


async def remove(db: AsyncSession, show: Show, user_id: int) -> None:
    """The host takes a co-host off the show, or a co-host (or invitee) steps down."""
    result = await db.execute(
        delete(CoHost).where(CoHost.show_id == show.id, CoHost.user_id == user_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("co-host")
