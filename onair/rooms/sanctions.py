"""Room moderation by a show's crew: time a user out of chat, remove them, ban them.

A timeout keeps a user reading but not writing; removal takes them out of one show's room;
a ban takes them out of every show of that host. Each is stored, audited and can be lifted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.context import OnAir
from onair.errors import ApiError, not_found
from onair.moderation import audit
from onair.rooms.models import RoomSanction, SanctionKind
from onair.shows.models import Show, ShowStatus
from onair.stage import crew

MAX_MINUTES = 7 * 24 * 60


async def active(db: AsyncSession, show: Show, user_id: int, now: datetime) -> list[RoomSanction]:
    """What holds for `user_id` in `show` now: the show's own sanctions and the host's bans."""
    stmt = select(RoomSanction).where(
        RoomSanction.user_id == user_id, RoomSanction.holding(show.id, show.host_id, now)
    )
    return list(await db.scalars(stmt))


def _refusal(sanction: RoomSanction) -> ApiError:
    until = f" until {sanction.until.isoformat(timespec='minutes')}" if sanction.until else ""
    if sanction.kind is SanctionKind.banned:
        return ApiError(403, "banned_from_host", f"you are banned from this host's shows{until}")
    if sanction.kind is SanctionKind.removed:
        return ApiError(403, "removed", f"you were removed from this room{until}")
    return ApiError(403, "timed_out", f"you are timed out of this chat{until}")


async def require_in_room(db: AsyncSession, show: Show, user: User, now: datetime) -> None:
    for sanction in await active(db, show, user.id, now):
        if sanction.kind is not SanctionKind.timeout:
            raise _refusal(sanction)


async def require_may_chat(db: AsyncSession, show: Show, user: User, now: datetime) -> None:
    found = await active(db, show, user.id, now)
    # The heaviest applies: a ban says more than a timeout.
    order = [SanctionKind.banned, SanctionKind.removed, SanctionKind.timeout]
    for kind in order:
        for sanction in found:
            if sanction.kind is kind:
                raise _refusal(sanction)


def sanction_out(sanction: RoomSanction, user: User | None = None) -> dict[str, Any]:
    return {
        "id": sanction.id,
        "kind": sanction.kind.value,
        "user_id": sanction.user_id,
        "user": (
            {"id": user.id, "username": user.username, "display_name": user.display_name}
            if user
            else None
        ),
        "show_id": sanction.show_id,
        "host_id": sanction.host_id,
        "until": sanction.until.isoformat() if sanction.until else None,
        "reason": sanction.reason,
        "created_at": sanction.created_at.isoformat(),
    }


async def impose(
    ctx: OnAir,
    db: AsyncSession,
    show: Show,
    actor: User,
    *,
    user_id: int,
    kind: SanctionKind,
    minutes: int | None,
    reason: str,
) -> RoomSanction:
    target = await db.get(User, user_id)
    if target is None:
        raise not_found("user")
    if target.id == actor.id:
        raise ApiError(409, "self", "you cannot sanction yourself")
    if await crew.is_crew(db, show, target):
        raise ApiError(409, "is_crew", "the host, co-hosts and moderators cannot be sanctioned")
    if kind is SanctionKind.timeout and minutes is None:
        raise ApiError(422, "invalid", "minutes: a timeout needs a length")
    now = ctx.clock.now()
    sanction = RoomSanction(
        kind=kind,
        user_id=target.id,
        show_id=None if kind is SanctionKind.banned else show.id,
        host_id=show.host_id if kind is SanctionKind.banned else None,
        until=now + timedelta(minutes=minutes) if minutes else None,
        created_by=actor.id,
        created_at=now,
        reason=reason,
        lifted=False,
    )
    db.add(sanction)
    await db.flush()
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action=f"room.{kind.value}",
        reason=reason,
        target_user_id=target.id,
        show_id=show.id,
        minutes=minutes,
        sanction_id=sanction.id,
    )
    await db.commit()
    await _enforce(ctx, db, show, target, sanction)
    return sanction


async def _enforce(
    ctx: OnAir, db: AsyncSession, show: Show, target: User, sanction: RoomSanction
) -> None:
    notice = sanction_out(sanction)
    if sanction.kind is SanctionKind.timeout:
        ctx.rooms.publish(show.id, "chat.sanction", notice, to_user=target.id)
        return
    shows = [show.id]
    if sanction.kind is SanctionKind.banned:
        stmt = select(Show.id).where(Show.host_id == show.host_id, Show.status != ShowStatus.ended)
        shows = list(await db.scalars(stmt))
    for show_id in shows:
        ctx.rooms.publish(show_id, "chat.sanction", notice, to_user=target.id)
        await ctx.stations.remove_user(show_id, target.id, "removed")  # wherever it runs
    reason = "banned from this host's shows" if sanction.kind is SanctionKind.banned else "removed"
    ctx.rooms.disconnect_user(target.id, reason, show_ids=shows)


async def list_for(db: AsyncSession, show: Show, now: datetime) -> list[dict[str, Any]]:
    stmt = (
        select(RoomSanction, User)
        .join(User, User.id == RoomSanction.user_id)
        .where(
            RoomSanction.lifted.is_(False),
            or_(RoomSanction.until.is_(None), RoomSanction.until > now),
            or_(RoomSanction.show_id == show.id, RoomSanction.host_id == show.host_id),
        )
        .order_by(RoomSanction.created_at.desc())
    )
    return [sanction_out(s, u) for s, u in (await db.execute(stmt)).all()]


async def lift(ctx: OnAir, db: AsyncSession, show: Show, actor: User, sanction_id: int) -> None:
    sanction = await db.get(RoomSanction, sanction_id)
    if sanction is None or (sanction.show_id != show.id and sanction.host_id != show.host_id):
        raise not_found("sanction")
    sanction.lifted = True
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="room.lift",
        target_user_id=sanction.user_id,
        show_id=show.id,
        sanction_id=sanction.id,
        kind=sanction.kind.value,
    )
    await db.commit()
    ctx.rooms.publish(
        show.id,
        "chat.sanction",
        {**sanction_out(sanction), "lifted": True},
        to_user=sanction.user_id,
    )
