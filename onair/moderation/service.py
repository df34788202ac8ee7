"""Platform moderation: the community rules, reports and what moderators do about them.

Every action writes its audit entry in the transaction that makes the change and commits it
here; what the action then tells the rooms (a warning, a closed connection) happens after the
commit, so nobody hears of a change that did not happen. A studio is stopped before anything is
written, because it writes its play log through sessions of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from onair.accounts.models import Session, User
from onair.clock import Clock
from onair.context import OnAir
from onair.errors import ApiError, forbidden, not_found
from onair.moderation import audit
from onair.moderation.models import (
    AuditEntry,
    CommunityRules,
    Report,
    ReportReason,
    ReportStatus,
    ReportTarget,
)
from onair.rooms import chat
from onair.rooms.models import ChatMessage
from onair.settings import Settings
from onair.shows import service as shows
from onair.shows.models import Show, ShowStatus

MAX_RULES = 20_000
MAX_REASON = 1000
MAX_SUSPENSION_HOURS = 8760
MAX_AUDIT_PAGE = 200

DEFAULT_RULES = """\
Be kind. Disagree with ideas, not with people: no harassment, threats or hate against anyone \
for who they are.

No spam: no flooding the chat, no unwanted advertising, no links to scams.

Keep it legal. Play only what the catalog licenses for your show, and share nothing you have \
no right to share.

No sexual content aimed at people who did not ask for it, and never anything involving minors.

Report what breaks these rules; moderators read every report. Breaking them can cost a \
message, a show or an account, for a while or for good."""


class Action(enum.StrEnum):
    """What a moderator may do about a report."""

    dismiss = "dismiss"
    remove_message = "remove_message"
    warn = "warn"
    suspend = "suspend"
    ban = "ban"
    end_show = "end_show"


def require_may_act(actor: User, target: User) -> None:
    """Nobody moderates themselves; moderators and admins answer only to admins."""
    if target.id == actor.id:
        raise forbidden("you cannot moderate yourself")
    if target.is_moderator and not actor.is_admin:
        raise forbidden("only admins can act on moderators and admins")


def may_act(actor: User, target: User | None) -> bool:
    if target is None:
        return True
    try:
        require_may_act(actor, target)
    except ApiError:
        return False
    return True


# The community rules ------------------------------------------------------------------------


def default_rules(settings: Settings) -> str:
    return settings.community_rules.strip() or DEFAULT_RULES


async def current_rules(db: AsyncSession) -> CommunityRules | None:
    """The latest edit, or None while nobody has edited the rules."""
    stmt = select(CommunityRules).order_by(CommunityRules.id.desc()).limit(1)
    return await db.scalar(stmt)


async def edit_rules(db: AsyncSession, clock: Clock, actor: User, body: str) -> CommunityRules:
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ApiError(422, "invalid", "body: write the rules first")
    if len(text) > MAX_RULES:
        raise ApiError(422, "invalid", f"body: at most {MAX_RULES} characters")
    rules = CommunityRules(body=text, updated_at=clock.now(), updated_by=actor.id)
    db.add(rules)
    await db.flush()
    await audit.record(
        db, clock, actor_id=actor.id, action="rules.edit", rules_id=rules.id, length=len(text)
    )
    return rules


# Reports ------------------------------------------------------------------------------------

_TARGET_KEY: dict[ReportTarget, InstrumentedAttribute[int | None]] = {
    ReportTarget.message: Report.message_id,
    ReportTarget.user: Report.user_id,
    ReportTarget.show: Report.show_id,
}


def target_id(report: Report) -> int | None:
    """The id of what was reported (None once it has been deleted)."""
    return {
        ReportTarget.message: report.message_id,
        ReportTarget.user: report.user_id,
        ReportTarget.show: report.show_id,
    }[report.target]


async def file_report(
    ctx: OnAir,
    db: AsyncSession,
    reporter: User,
    *,
    target: ReportTarget,
    target_id: int,
    reason: ReportReason,
    details: str = "",
) -> Report:
    """Files a report. A message's report also names its author and show, a show's its host,
    so a moderator sees whom an action would reach; one open report per reporter and target."""
    await ctx.limiters.report.acheck(f"user:{reporter.id}")
    report = Report(
        reporter_id=reporter.id,
        reporter=reporter,
        target=target,
        reason=reason,
        details=details.strip(),
        status=ReportStatus.open,
        created_at=ctx.clock.now(),
    )
    if target is ReportTarget.message:
        message = await db.get(ChatMessage, target_id)
        if message is None:
            raise not_found("message")
        report.message_id, report.user_id, report.show_id = (
            message.id,
            message.user_id,
            message.show_id,
        )
    elif target is ReportTarget.user:
        user = await db.get(User, target_id)
        if user is None:
            raise not_found("user")
        report.user_id = user.id
    else:
        show = await db.get(Show, target_id)
        if show is None:
            raise not_found("show")
        report.show_id, report.user_id = show.id, show.host_id
    if report.user_id == reporter.id:
        raise ApiError(422, "own", "you cannot report yourself, your messages or your shows")
    existing = await db.scalar(
        select(Report.id).where(
            Report.reporter_id == reporter.id,
            Report.target == target,
            _TARGET_KEY[target] == target_id,
            Report.status == ReportStatus.open,
        )
    )
    if existing is not None:
        raise ApiError(
            409, "already_reported", f"you already reported this {target}; it is still open"
        )
    db.add(report)
    await db.flush()
    return report


async def reports_by(db: AsyncSession, reporter: User, *, limit: int = 50) -> list[Report]:
    stmt = (
        select(Report)
        .where(Report.reporter_id == reporter.id)
        .order_by(Report.id.desc())
        .limit(limit)
    )
    return list((await db.scalars(stmt)).unique())


async def get_report(db: AsyncSession, report_id: int) -> Report:
    report = await db.get(Report, report_id)
    if report is None:
        raise not_found("report")
    return report


async def list_reports(
    db: AsyncSession, status: ReportStatus, *, limit: int = 50, offset: int = 0
) -> list[Report]:
    """Open reports oldest first (the queue); resolved ones latest resolved first."""
    stmt = select(Report).where(Report.status == status)
    if status is ReportStatus.open:
        stmt = stmt.order_by(Report.created_at, Report.id)
    else:
        stmt = stmt.order_by(Report.resolved_at.desc(), Report.id.desc())
    return list((await db.scalars(stmt.limit(limit).offset(offset))).unique())


@dataclass(frozen=True)
class Case:
    """A report with what a moderator needs to judge it."""

    report: Report
    account: User | None
    """Whom it is about: the user, the message's author or the show's host."""
    message: ChatMessage | None
    show: Show | None
    others_open: int
    """Other open reports on the same target."""
    others_total: int


async def cases(db: AsyncSession, reports: list[Report]) -> list[Case]:
    """Reports with their targets and counts, in a handful of queries for the whole page."""
    user_ids = {r.user_id for r in reports if r.user_id is not None}
    message_ids = {r.message_id for r in reports if r.message_id is not None}
    show_ids = {r.show_id for r in reports if r.show_id is not None}
    users = await users_by_id(db, user_ids)
    messages: dict[int, ChatMessage] = {}
    if message_ids:
        found = await db.scalars(select(ChatMessage).where(ChatMessage.id.in_(message_ids)))
        messages = {m.id: m for m in found.unique()}
    show_rows: dict[int, Show] = {}
    if show_ids:
        found_shows = await db.scalars(select(Show).where(Show.id.in_(show_ids)))
        show_rows = {s.id: s for s in found_shows.unique()}
    tally = await _tally(db, reports)
    out = []
    for r in reports:
        open_n, total = tally.get((r.target, target_id(r)), (0, 0))
        out.append(
            Case(
                report=r,
                account=users.get(r.user_id) if r.user_id is not None else None,
                message=messages.get(r.message_id) if r.message_id is not None else None,
                show=show_rows.get(r.show_id) if r.show_id is not None else None,
                others_open=max(0, open_n - (r.status is ReportStatus.open)),
                others_total=max(0, total - 1),
            )
        )
    return out


async def _tally(
    db: AsyncSession, reports: list[Report]
) -> dict[tuple[ReportTarget, int | None], tuple[int, int]]:
    """(open, total) reports per target named in `reports`."""
    tally: dict[tuple[ReportTarget, int | None], tuple[int, int]] = {}
    for kind, column in _TARGET_KEY.items():
        keys = {target_id(r) for r in reports if r.target is kind} - {None}
        if not keys:
            continue
        rows = await db.execute(
            select(column, Report.status, func.count())
            .where(Report.target == kind, column.in_(keys))
            .group_by(column, Report.status)
        )
        for key, status, count in rows:
            open_n, total = tally.get((kind, key), (0, 0))
            tally[(kind, key)] = (
                open_n + (count if status is ReportStatus.open else 0),
                total + count,
            )
    return tally


async def users_by_id(db: AsyncSession, ids: Iterable[int]) -> dict[int, User]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {u.id: u for u in await db.scalars(select(User).where(User.id.in_(wanted)))}


# Acting on reports --------------------------------------------------------------------------


async def act_on_report(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    report: Report,
    action: Action,
    reason: str,
    *,
    hours: int | None = None,
) -> Report:
    """Does `action` about the report and closes it, with the other open reports on the same
    target (the moderator has judged the target, not one person's report of it)."""
    if report.status is not ReportStatus.open:
        raise ApiError(409, "resolved", f"this report was already {report.status}")
    account = await db.get(User, report.user_id) if report.user_id is not None else None
    if account is not None:
        require_may_act(actor, account)
    same_target = await _open_on_same_target(db, report)

    def resolve() -> None:
        status = ReportStatus.dismissed if action is Action.dismiss else ReportStatus.actioned
        now = ctx.clock.now()
        for r in [report, *same_target]:
            r.status, r.resolved_by, r.resolved_at = status, actor.id, now

    also: dict[str, Any] = {"also_resolved": [r.id for r in same_target]} if same_target else {}
    with audit.working_report(db, report.id):
        if action is Action.dismiss:
            resolve()
            await audit.record(
                db,
                ctx.clock,
                actor_id=actor.id,
                action="report.dismiss",
                reason=reason,
                target_user_id=report.user_id,
                show_id=report.show_id,
                message_id=report.message_id,
                **also,
            )
            await db.commit()
        elif action is Action.remove_message:
            message = await db.get(ChatMessage, report.message_id) if report.message_id else None
            if message is None:
                raise ApiError(409, "no_message", "this report is not about a message")
            resolve()
            await chat.remove_message(ctx, db, message, actor, reason)
        elif action is Action.end_show:
            show = await db.get(Show, report.show_id) if report.show_id else None
            if show is None:
                raise ApiError(409, "no_show", "this report is not about a show")
            await end_show(ctx, db, actor, show, reason, before_writes=resolve, **also)
        else:
            if account is None:
                raise ApiError(409, "no_account", "the reported account no longer exists")
            if action is Action.warn:
                await warn(ctx, db, actor, account, reason, before_writes=resolve, **also)
            elif action is Action.suspend:
                if hours is None:
                    raise ApiError(422, "invalid", "hours: say how long the suspension lasts")
                await suspend(ctx, db, actor, account, reason, hours, before_writes=resolve, **also)
            else:
                await ban(ctx, db, actor, account, reason, before_writes=resolve, **also)
    return report


async def _open_on_same_target(db: AsyncSession, report: Report) -> list[Report]:
    key = target_id(report)
    if key is None:
        return []
    stmt = select(Report).where(
        Report.target == report.target,
        _TARGET_KEY[report.target] == key,
        Report.status == ReportStatus.open,
        Report.id != report.id,
    )
    return list((await db.scalars(stmt)).unique())


def _nothing() -> None:
    return None


async def warn(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    account: User,
    reason: str,
    *,
    before_writes: Callable[[], None] = _nothing,
    **details: Any,
) -> User:
    """Warns the user in every room they are in now, and puts it on their record."""
    require_may_act(actor, account)
    before_writes()
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="user.warn",
        reason=reason,
        target_user_id=account.id,
        **details,
    )
    await db.commit()
    ctx.rooms.notify_user(account.id, "moderation.warning", {"reason": reason})
    return account


async def suspend(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    account: User,
    reason: str,
    hours: int,
    *,
    before_writes: Callable[[], None] = _nothing,
    **details: Any,
) -> User:
    require_may_act(actor, account)
    if not 1 <= hours <= MAX_SUSPENSION_HOURS:
        raise ApiError(422, "invalid", f"hours: from 1 to {MAX_SUSPENSION_HOURS}")
    if account.banned_at is not None:
        raise ApiError(409, "banned", "this account is banned already")
    until = ctx.clock.now() + timedelta(hours=hours)

    def apply() -> None:
        before_writes()
        account.suspended_until = until

    await _bar(
        ctx,
        db,
        actor,
        account,
        "suspended",
        reason,
        apply,
        hours=hours,
        until=until.isoformat(),
        **details,
    )
    return account


async def ban(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    account: User,
    reason: str,
    *,
    before_writes: Callable[[], None] = _nothing,
    **details: Any,
) -> User:
    require_may_act(actor, account)
    if account.banned_at is not None:
        raise ApiError(409, "already_banned", "this account is banned already")
    now = ctx.clock.now()

    def apply() -> None:
        before_writes()
        account.banned_at = now

    await _bar(ctx, db, actor, account, "banned", reason, apply, **details)
    return account


async def _bar(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    account: User,
    why: str,
    reason: str,
    apply: Callable[[], None],
    **details: Any,
) -> None:
    """Suspends or bans: signs the user out everywhere, ends the shows they host live, and
    takes them out of every room and off every stage at once."""
    live = list(await db.scalars(select(Show).where(Show.status == ShowStatus.live)))
    hosted = [s for s in live if s.host_id == account.id]
    for show in hosted:
        await ctx.stations.stop(show.id)
    apply()
    await db.execute(delete(Session).where(Session.user_id == account.id))
    for show in hosted:
        await shows.end_show(db, ctx.clock, show)
        await audit.record(
            db,
            ctx.clock,
            actor_id=actor.id,
            action="show.end",
            reason=f"host {why}: {reason}",
            target_user_id=account.id,
            show_id=show.id,
            title=show.title,
        )
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="user.suspend" if why == "suspended" else "user.ban",
        reason=reason,
        target_user_id=account.id,
        **details,
    )
    await db.commit()
    ctx.rooms.disconnect_user(account.id, why)
    ctx.notifications.disconnect_user(account.id, why)
    for show in live:
        if show.host_id == account.id:
            continue
        # Off the air and out of every call-in queue, wherever the show's studio runs.
        await ctx.stations.remove_user(show.id, account.id, why, hang_up=True)


async def unsuspend(ctx: OnAir, db: AsyncSession, actor: User, account: User, reason: str) -> User:
    require_may_act(actor, account)
    if account.suspended_until is None or account.suspended_until <= ctx.clock.now():
        raise ApiError(409, "not_suspended", "this account is not suspended")
    account.suspended_until = None
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="user.unsuspend",
        reason=reason,
        target_user_id=account.id,
    )
    await db.commit()
    return account


async def unban(ctx: OnAir, db: AsyncSession, actor: User, account: User, reason: str) -> User:
    if not actor.is_admin:
        raise forbidden("only admins can lift a ban")
    require_may_act(actor, account)
    if account.banned_at is None:
        raise ApiError(409, "not_banned", "this account is not banned")
    account.banned_at = None
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="user.unban",
        reason=reason,
        target_user_id=account.id,
    )
    await db.commit()
    return account


async def end_show(
    ctx: OnAir,
    db: AsyncSession,
    actor: User,
    show: Show,
    reason: str,
    *,
    before_writes: Callable[[], None] = _nothing,
    **details: Any,
) -> Show:
    """Ends a live show the way its host's "End show" does: the studio stops, the show ends."""
    require_may_act(actor, show.host)
    if show.status is not ShowStatus.live:
        raise ApiError(409, "not_live", "only a live show can be ended")
    await ctx.stations.stop(show.id)
    before_writes()
    await shows.end_show(db, ctx.clock, show)
    await audit.record(
        db,
        ctx.clock,
        actor_id=actor.id,
        action="show.end",
        reason=reason,
        target_user_id=show.host_id,
        show_id=show.id,
        title=show.title,
        **details,
    )
    await db.commit()
    return show


# The audit log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    """The username of whoever acted."""
    action: str | None = None
    target_user: str | None = None
    """The username of whom it was done to."""
    show_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    """Entries older than this one: the next page."""
    limit: int = 50


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _user_named(username: str) -> ColumnElement[int]:
    # A scalar subquery rather than a join: the entry's actor is already joined for display.
    return select(User.id).where(User.username == username.strip().lower()).scalar_subquery()


async def audit_log(db: AsyncSession, query: AuditQuery) -> list[AuditEntry]:
    """Newest first; times without a zone are taken as UTC."""
    stmt = select(AuditEntry)
    if query.actor:
        stmt = stmt.where(AuditEntry.actor_id == _user_named(query.actor))
    if query.target_user:
        stmt = stmt.where(AuditEntry.target_user_id == _user_named(query.target_user))
    if query.action:
        stmt = stmt.where(AuditEntry.action == query.action.strip())
    if query.show_id is not None:
        stmt = stmt.where(AuditEntry.show_id == query.show_id)
    if query.since is not None:
        stmt = stmt.where(AuditEntry.created_at >= _utc(query.since))
    if query.until is not None:
        stmt = stmt.where(AuditEntry.created_at <= _utc(query.until))
    if query.before_id is not None:
        stmt = stmt.where(AuditEntry.id < query.before_id)
    limit = max(1, min(query.limit, MAX_AUDIT_PAGE))
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
    return list((await db.scalars(stmt)).unique())


async def audit_actions(db: AsyncSession) -> list[str]:
    """Every action the log holds, for the filter's suggestions."""
    stmt = select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    return list(await db.scalars(stmt))
