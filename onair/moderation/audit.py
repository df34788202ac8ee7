"""The audit log: every moderation action, by a room's crew or the platform's moderators."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from onair.clock import Clock
from onair.moderation.models import AuditEntry


async def record(
    db: AsyncSession,
    clock: Clock,
    *,
    actor_id: int | None,
    action: str,
    reason: str = "",
    target_user_id: int | None = None,
    show_id: int | None = None,
    message_id: int | None = None,
    report_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Adds one entry to the caller's transaction, so the action and its record commit together."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        reason=reason[:1000],
        target_user_id=target_user_id,
        show_id=show_id,
        message_id=message_id,
        report_id=report_id,
        details=details,
        created_at=clock.now(),
    )
    db.add(entry)
    await db.flush()
    return entry
