"""The community rules, reports, moderators' actions and the audit log, under /api/v1."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from onair.accounts.deps import CurrentUser, Moderator
from onair.accounts.models import Role, User
from onair.context import Ctx, Db
from onair.errors import forbidden, not_found
from onair.moderation import service
from onair.moderation.models import AuditEntry, Report, ReportReason, ReportStatus, ReportTarget
from onair.moderation.service import Action, AuditQuery, Case
from onair.shows.models import ShowStatus
from onair.types import MAX_ID, BodyId, PathId

router = APIRouter(tags=["moderation"])


async def _required_admin(user: Moderator) -> User:
    if not user.is_admin:
        raise forbidden("admins only")
    return user


Admin = Annotated[User, Depends(_required_admin)]

Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=service.MAX_REASON,
        description="Why: recorded in the audit log (and, for a warning, shown to the user).",
    ),
]
Hours = Annotated[int, Field(ge=1, le=service.MAX_SUSPENSION_HOURS)]


class Person(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str


class Account(Person):
    """A user as moderators see them: their role and whether they are barred."""

    role: Role
    created_at: datetime
    suspended_until: datetime | None
    banned_at: datetime | None


class RulesOut(BaseModel):
    body: str
    updated_at: datetime | None = Field(description="None while the default rules apply.")


class RulesEdit(BaseModel):
    body: str = Field(min_length=1, max_length=service.MAX_RULES)


class ReportIn(BaseModel):
    target: ReportTarget
    target_id: BodyId = Field(description="The message's, user's or show's id.")
    reason: ReportReason
    details: str = Field(default="", max_length=1000, description="What happened, if it helps.")


class MyReport(BaseModel):
    """A report as its reporter sees it."""

    id: int
    target: ReportTarget
    target_id: int | None
    reason: ReportReason
    details: str
    status: ReportStatus
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, report: Report) -> MyReport:
        return cls(
            id=report.id,
            target=report.target,
            target_id=service.target_id(report),
            reason=report.reason,
            details=report.details,
            status=report.status,
            created_at=report.created_at,
            resolved_at=report.resolved_at,
        )


class ReportedMessage(BaseModel):
    id: int
    show_id: int
    text: str
    created_at: datetime
    author: Person
    deleted: bool
    held: str | None


class ReportedShow(BaseModel):
    id: int
    title: str
    status: ShowStatus
    host: Person


class QueuedReport(MyReport):
    """A report with what a moderator needs to judge it."""

    reporter: Person | None
    resolved_by: int | None
    account: Account | None = Field(
        description="Whom it is about: the user, the message's author or the show's host."
    )
    message: ReportedMessage | None
    show: ReportedShow | None
    others_open: int = Field(description="Other open reports on the same target.")
    others_total: int = Field(description="Other reports on the same target, ever.")

    @classmethod
    def of_case(cls, case: Case) -> QueuedReport:
        r, m, s = case.report, case.message, case.show
        return cls(
            **MyReport.of(r).model_dump(),
            reporter=Person.model_validate(r.reporter) if r.reporter else None,
            resolved_by=r.resolved_by,
            account=Account.model_validate(case.account) if case.account else None,
            message=ReportedMessage(
                id=m.id,
                show_id=m.show_id,
                text=m.text,
                created_at=m.created_at,
                author=Person.model_validate(m.user),
                deleted=m.deleted_at is not None,
                held=m.held_reason,
            )
            if m
            else None,
            show=ReportedShow(
                id=s.id, title=s.title, status=s.status, host=Person.model_validate(s.host)
            )
            if s
            else None,
            others_open=case.others_open,
            others_total=case.others_total,
        )


class ReportAction(BaseModel):
    action: Action
    reason: Reason
    hours: Hours | None = Field(default=None, description="For suspend: how long.")


class UserAction(BaseModel):
    reason: Reason


class Suspension(BaseModel):
    reason: Reason
    hours: Hours


class AuditEntryOut(BaseModel):
    id: int
    action: str
    reason: str
    actor: Person | None
    target_user: Person | None
    show_id: int | None
    message_id: int | None
    report_id: int | None
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, entry: AuditEntry, users: dict[int, User]) -> AuditEntryOut:
        target = users.get(entry.target_user_id) if entry.target_user_id else None
        return cls(
            id=entry.id,
            action=entry.action,
            reason=entry.reason,
            actor=Person.model_validate(entry.actor) if entry.actor else None,
            target_user=Person.model_validate(target) if target else None,
            show_id=entry.show_id,
            message_id=entry.message_id,
            report_id=entry.report_id,
            details=entry.details,
            created_at=entry.created_at,
        )


async def audit_out(db: Db, entries: list[AuditEntry]) -> list[AuditEntryOut]:
    ids = {e.target_user_id for e in entries if e.target_user_id is not None}
    users = await service.users_by_id(db, ids)
    return [AuditEntryOut.of(e, users) for e in entries]


# The community rules ------------------------------------------------------------------------


@router.get("/api/v1/rules", response_model=RulesOut, summary="The community rules")
async def get_rules(ctx: Ctx, db: Db) -> RulesOut:
    rules = await service.current_rules(db)
    if rules is None:
        return RulesOut(body=service.default_rules(ctx.settings), updated_at=None)
    return RulesOut(body=rules.body, updated_at=rules.updated_at)


@router.put(
    "/api/v1/rules",
    response_model=RulesOut,
    summary="Edit the community rules (admins)",
    description="Plain text: a blank line starts a new paragraph, lines starting with `- ` "
    "make a list. Every edit is kept and audited.",
)
async def put_rules(body: RulesEdit, admin: Admin, ctx: Ctx, db: Db) -> RulesOut:
    rules = await service.edit_rules(db, ctx.clock, admin, body.body)
    await db.commit()
    return RulesOut(body=rules.body, updated_at=rules.updated_at)


# Reports ------------------------------------------------------------------------------------


@router.post(
    "/api/v1/reports",
    status_code=201,
    response_model=MyReport,
    summary="Report a message, a user or a show",
    description="Anyone signed in, `reports_per_hour` at most. One open report per reporter "
    "and target: reporting the same thing again while it is open answers 409.",
)
async def report(body: ReportIn, user: CurrentUser, ctx: Ctx, db: Db) -> MyReport:
    filed = await service.file_report(
        ctx,
        db,
        user,
        target=body.target,
        target_id=body.target_id,
        reason=body.reason,
        details=body.details,
    )
    await db.commit()
    return MyReport.of(filed)


@router.get("/api/v1/reports/mine", response_model=list[MyReport], summary="My reports")
async def my_reports(
    user: CurrentUser, db: Db, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[MyReport]:
    return [MyReport.of(r) for r in await service.reports_by(db, user, limit=limit)]


# The moderators' queue and actions ----------------------------------------------------------


@router.get(
    "/api/v1/moderation/reports",
    response_model=list[QueuedReport],
    summary="The reports queue (moderators)",
    description="Open reports oldest first; resolved ones latest resolved first.",
)
async def queue(
    moderator: Moderator,
    db: Db,
    status: ReportStatus = ReportStatus.open,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[QueuedReport]:
    found = await service.list_reports(db, status, limit=limit, offset=offset)
    return [QueuedReport.of_case(c) for c in await service.cases(db, found)]


@router.post(
    "/api/v1/moderation/reports/{report_id}/actions",
    response_model=QueuedReport,
    summary="Act on a report (moderators)",
    description="dismiss, remove_message (message reports), warn, suspend (for `hours`), ban "
    "(the account the report is about), end_show (a live show reported, or the show a reported "
    "message was written in). The other open reports on the same target close with it. "
    "Moderators cannot act on moderators or admins (admins can), nobody on themselves.",
)
async def act(
    report_id: PathId, body: ReportAction, moderator: Moderator, ctx: Ctx, db: Db
) -> QueuedReport:
    found = await service.get_report(db, report_id)
    await service.act_on_report(
        ctx, db, moderator, found, body.action, body.reason, hours=body.hours
    )
    return QueuedReport.of_case((await service.cases(db, [found]))[0])


async def _account(db: Db, user_id: int) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise not_found("user")
    return user


@router.post(
    "/api/v1/moderation/users/{user_id}/warn",
    response_model=Account,
    summary="Warn a user (moderators)",
    description="The warning reaches every room the user is in now, as `moderation.warning`.",
)
async def warn_user(
    user_id: PathId, body: UserAction, moderator: Moderator, ctx: Ctx, db: Db
) -> User:
    return await service.warn(ctx, db, moderator, await _account(db, user_id), body.reason)


@router.post(
    "/api/v1/moderation/users/{user_id}/suspend",
    response_model=Account,
    summary="Suspend a user for some hours (moderators)",
    description="Signs them out everywhere, closes their room connections (4403), ends the "
    "shows they host live; they cannot sign in until the suspension ends.",
)
async def suspend_user(
    user_id: PathId, body: Suspension, moderator: Moderator, ctx: Ctx, db: Db
) -> User:
    account = await _account(db, user_id)
    return await service.suspend(ctx, db, moderator, account, body.reason, body.hours)


@router.post(
    "/api/v1/moderation/users/{user_id}/ban",
    response_model=Account,
    summary="Ban a user (moderators)",
    description="As a suspension, until an admin lifts it.",
)
async def ban_user(
    user_id: PathId, body: UserAction, moderator: Moderator, ctx: Ctx, db: Db
) -> User:
    return await service.ban(ctx, db, moderator, await _account(db, user_id), body.reason)


@router.post(
    "/api/v1/moderation/users/{user_id}/unsuspend",
    response_model=Account,
    summary="End a suspension early (moderators)",
)
async def unsuspend_user(
    user_id: PathId, body: UserAction, moderator: Moderator, ctx: Ctx, db: Db
) -> User:
    return await service.unsuspend(ctx, db, moderator, await _account(db, user_id), body.reason)


@router.post(
    "/api/v1/moderation/users/{user_id}/unban",
    response_model=Account,
    summary="Lift a ban (admins)",
)
async def unban_user(user_id: PathId, body: UserAction, admin: Admin, ctx: Ctx, db: Db) -> User:
    return await service.unban(ctx, db, admin, await _account(db, user_id), body.reason)


# The audit log ------------------------------------------------------------------------------


@router.get(
    "/api/v1/moderation/audit",
    response_model=list[AuditEntryOut],
    summary="The audit log (admins)",
    description="Newest first. Times without a zone are UTC; `until` is inclusive. For the "
    "next page, pass the last entry's id as `before_id`.",
)
async def audit_log(
    admin: Admin,
    db: Db,
    actor: Annotated[str | None, Query(max_length=32, description="Who acted.")] = None,
    action: Annotated[str | None, Query(max_length=32, examples=["user.suspend"])] = None,
    target_user: Annotated[str | None, Query(max_length=32, description="Whom to.")] = None,
    show_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_AUDIT_PAGE)] = 50,
) -> list[AuditEntryOut]:
    query = AuditQuery(
        actor=actor,
        action=action,
        target_user=target_user,
        show_id=show_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return await audit_out(db, await service.audit_log(db, query))
