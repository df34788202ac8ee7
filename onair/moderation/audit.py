"""The audit log: every moderation action, by a room's crew or the platform's moderators."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from onair.clock import Clock
from onair.moderation.models import AuditEntry

_WORKING_REPORT = "onair.audit.report_id"


@contextmanager
def working_report(db: AsyncSession, report_id: int) -> Iterator[None]:
    """Entries recorded on `db` meanwhile name the report being worked, even when another
    feature's action records them (a moderator removing a message through chat's own path)."""
    db.info[_WORKING_REPORT] = report_id
    try:
        yield
    finally:
        db.info.pop(_WORKING_REPORT, None)


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
        report_id=report_id if report_id is not None else db.info.get(_WORKING_REPORT),
        details=details,
        created_at=clock.now(),
    )
    db.add(entry)
    await db.flush()
    return entry
