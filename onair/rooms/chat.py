"""Chat in a show's room: who may write, what is held back, slow mode, pins and deletions.

A message is stored and committed before anyone hears of it, so an acknowledged message is
never lost. Messages the filters hold back (blocked words, links) reach only their author and
the crew until the crew releases or deletes them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import User
from onair.catalog.text import fold
from onair.context import OnAir
from onair.errors import ApiError, forbidden, not_found
from onair.moderation import audit
from onair.rooms.models import MAX_MESSAGE, ChatMessage, RoomSettings
from onair.rooms.sanctions import require_may_chat
from onair.shows.models import Show, ShowStatus

HISTORY_ON_JOIN = 50
MAX_SLOW_MODE_S = 600

# A link is a scheme, a www. host, or a name with a common top-level domain: enough to hold
# back the spam links chat attracts without catching "e.g." or a decimal number.
_LINK = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+"
    r"|\b[a-z0-9-]{2,}\.(?:com|net|org|io|co|ly|me|tv|gg|app|xyz|info|biz|ru|cn|uk|de|link|site"
    r"|online|shop|live|club|top)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=8)
def _blocked_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(fold(w)) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def hold_reason(text: str, *, blocked_words: list[str], hold_links: bool) -> str | None:
    """Why a message must wait for the crew ("blocked_word", "link"), or None."""
    pattern = _blocked_pattern(tuple(blocked_words))
    if pattern is not None and pattern.search(fold(text)):
        return "blocked_word"
    if hold_links and _LINK.search(text):
        return "link"
    return None


def message_out(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": message.id,
        "show_id": message.show_id,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "user": {
            "id": message.user.id,
            "username": message.user.username,
            "display_name": message.user.display_name,
        },
    }
    if message.held_reason:
        out["held"] = message.held_reason
    return out


def clean_text(raw: str) -> str:
    # Control characters (other than line breaks) have no business in chat and can spoof
    # the layout of other messages; runs of blank lines are squeezed.
    text = "".join(ch for ch in raw if ch in "\n" or (ch >= " " and ch != "\x7f")).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if not text:
        raise ApiError(422, "invalid", "text: write something first")
    if len(text) > MAX_MESSAGE:
        raise ApiError(422, "invalid", f"text: at most {MAX_MESSAGE} characters")
    return text


async def send(
    ctx: OnAir, db: AsyncSession, show: Show, user: User, raw_text: str, *, crew: bool
) -> ChatMessage:
    """Checks, stores and commits a message, then tells the room (or the crew, if held)."""
    text = clean_text(raw_text)
    if show.status is ShowStatus.ended:
        raise ApiError(409, "show_ended", "chat closed when the show ended")
    now = ctx.clock.now()
    if not crew:
        _require_old_enough(ctx, user, now)
        await require_may_chat(db, show, user, now)
    await ctx.limiters.chat.acheck(f"user:{user.id}")
    room = ctx.rooms.room(show.id)
    if not crew:
        await _require_slow_mode_passed(db, show, user, now)
    held = None
    if not crew:
        s = ctx.settings
        held = hold_reason(text, blocked_words=s.blocked_word_list, hold_links=s.hold_links)
    message = ChatMessage(
        show_id=show.id, user_id=user.id, user=user, text=text, created_at=now, held_reason=held
    )
    db.add(message)
    await db.commit()
    out = message_out(message)
    if held:
        room.publish("chat.held", {"message": out}, crew_only=True)
    else:
        room.publish("chat.message", {"message": out})
    return message


def _require_old_enough(ctx: OnAir, user: User, now: datetime) -> None:
    minimum = timedelta(minutes=ctx.settings.chat_min_account_age_minutes)
    if minimum and now - user.created_at < minimum:
        ready = user.created_at + minimum
        raise ApiError(
            403,
            "account_too_new",
            f"new accounts may chat from {ready.isoformat(timespec='minutes')} (UTC)",
        )


async def _require_slow_mode_passed(
    db: AsyncSession, show: Show, user: User, now: datetime
) -> None:
    """Slow mode counts from the user's last message in the database, so it holds whichever
    node each message was sent to, and across restarts."""
    slow = await slow_mode_of(db, show.id)
    if not slow:
        return
    stmt = (
        select(ChatMessage.created_at)
        .where(ChatMessage.user_id == user.id, ChatMessage.show_id == show.id)
        .order_by(ChatMessage.id.desc())
        .limit(1)
    )
    last = await db.scalar(stmt)
    if last is None:
        return
    wait = slow - (now - last).total_seconds()
    if wait > 0:
        raise ApiError(
            429,
            "slow_mode",
            f"slow mode: one message every {slow} s; wait {wait:.0f} s",
            retry_after=wait,
        )


async def history(
    db: AsyncSession,
    show_id: int,
    *,
    limit: int = HISTORY_ON_JOIN,
    before: int | None = None,
    held: bool = False,
) -> list[ChatMessage]:
    """The latest visible messages (or, for the crew, those held back), oldest first."""
    stmt = select(ChatMessage).where(
        ChatMessage.show_id == show_id, ChatMessage.deleted_at.is_(None)
    )
    stmt = stmt.where(
        ChatMessage.held_reason.is_not(None) if held else ChatMessage.held_reason.is_(None)
    )
    if before is not None:
        stmt = stmt.where(ChatMessage.id < before)
    stmt = stmt.order_by(ChatMessage.id.desc()).limit(limit)
    found = list((await db.scalars(stmt)).unique().all())
    found.reverse()
    return found


async def get_message(db: AsyncSession, show_id: int, message_id: int) -> ChatMessage:
    message = await db.get(ChatMessage, message_id)
    if message is None or message.show_id != show_id:
        raise not_found("message")
    return message


async def remove_message(
    ctx: OnAir, db: AsyncSession, message: ChatMessage, actor: User, reason: str
) -> None:
    """Deletes a message for everyone (the crew's or a moderator's action), audited: a second
    removal (a moderator after the host) is recorded too, but the room hears of it once."""
    already = message.deleted_at is not None
    if not already:
        message.deleted_at = ctx.clock.now()
        message.deleted_by = actor.id
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="chat.delete",
        reason=reason,
        target_user_id=message.user_id,
        show_id=message.show_id,
        message_id=message.id,
        text=message.text,
    )
    settings = await db.get(RoomSettings, message.show_id)
    unpinned = settings is not None and settings.pinned_message_id == message.id
    if unpinned and settings is not None:
        settings.pinned_message_id = None
    await db.commit()
    if not already:
        ctx.rooms.publish(message.show_id, "chat.deleted", {"id": message.id})
    if unpinned:
        ctx.rooms.publish(message.show_id, "chat.settings", await settings_out(db, message.show_id))


async def delete_own(ctx: OnAir, db: AsyncSession, message: ChatMessage, user: User) -> None:
    if message.user_id != user.id:
        raise forbidden("you can delete only your own messages")
    if message.deleted_at is None:
        message.deleted_at = ctx.clock.now()
        message.deleted_by = user.id
        await db.commit()
    ctx.rooms.publish(message.show_id, "chat.deleted", {"id": message.id})


async def release(ctx: OnAir, db: AsyncSession, message: ChatMessage, actor: User) -> None:
    """The crew lets a held message through: the room sees it where it was written."""
    if message.deleted_at is not None:
        raise ApiError(409, "deleted", "that message was deleted")
    if message.held_reason is None:
        return
    reason, message.held_reason = message.held_reason, None
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="chat.release",
        reason=f"held for {reason}",
        target_user_id=message.user_id,
        show_id=message.show_id,
        message_id=message.id,
    )
    await db.commit()
    ctx.rooms.publish(message.show_id, "chat.message", {"message": message_out(message)})


async def slow_mode_of(db: AsyncSession, show_id: int) -> int:
    settings = await db.get(RoomSettings, show_id)
    return settings.slow_mode_s if settings else 0


async def settings_out(db: AsyncSession, show_id: int) -> dict[str, Any]:
    settings = await db.get(RoomSettings, show_id)
    pinned = None
    if settings is not None and settings.pinned_message_id is not None:
        message = await db.get(ChatMessage, settings.pinned_message_id)
        if message is not None and message.deleted_at is None:
            pinned = message_out(message)
    return {"pinned": pinned, "slow_mode_s": settings.slow_mode_s if settings else 0}


async def _settings_row(db: AsyncSession, show_id: int) -> RoomSettings:
    settings = await db.get(RoomSettings, show_id)
    if settings is None:
        settings = RoomSettings(show_id=show_id, slow_mode_s=0)
        db.add(settings)
    return settings


async def pin(
    ctx: OnAir, db: AsyncSession, show: Show, actor: User, message_id: int | None
) -> dict[str, Any]:
    settings = await _settings_row(db, show.id)
    if message_id is not None:
        message = await get_message(db, show.id, message_id)
        if message.deleted_at is not None or message.held_reason is not None:
            raise ApiError(409, "not_visible", "only a message the room can see can be pinned")
    settings.pinned_message_id = message_id
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="chat.pin" if message_id else "chat.unpin",
        show_id=show.id,
        message_id=message_id,
    )
    await db.commit()
    out = await settings_out(db, show.id)
    ctx.rooms.publish(show.id, "chat.settings", out)
    return out


async def set_slow_mode(
    ctx: OnAir, db: AsyncSession, show: Show, actor: User, seconds: int
) -> dict[str, Any]:
    settings = await _settings_row(db, show.id)
    settings.slow_mode_s = seconds
    await audit.record(
        db, ctx.clock, actor_id=actor.id, action="room.slow_mode", show_id=show.id, seconds=seconds
    )
    await db.commit()
    out = await settings_out(db, show.id)
    ctx.rooms.publish(show.id, "chat.settings", out)
    return out
