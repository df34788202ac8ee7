"""The moderation pages: the community rules, the reports queue and the audit log.

They only read; acting on a report and editing the rules go through the JSON API from
moderation.js, so the rules of who may do what live in the service alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from onair.context import Ctx, Db
from onair.errors import forbidden
from onair.moderation import service
from onair.moderation.models import ReportStatus
from onair.moderation.router import QueuedReport, audit_out
from onair.moderation.service import AuditQuery
from onair.types import MAX_ID
from onair.web.rendering import login_url, render
from onair.web.router import Viewer

router = APIRouter(include_in_schema=False)

QUEUE_PAGE = 100
AUDIT_PAGE = 50

REASONS = {
    "harassment": "Harassment",
    "hate": "Hate",
    "spam": "Spam",
    "sexual": "Sexual content",
    "copyright": "Copyright",
    "other": "Other",
}
TARGETS = {"message": "a chat message", "user": "an account", "show": "a show"}

_BLANK_LINE = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"^\s*[-*]\s+")


@dataclass(frozen=True)
class Block:
    """A paragraph or a list of the rules' plain text."""

    kind: Literal["p", "ul"]
    lines: list[str]


def blocks(text: str) -> list[Block]:
    """Blank lines separate paragraphs; a paragraph whose lines all start with "- " is a list.
    The text stays text: the template escapes every line, so no markup gets through."""
    out = []
    for chunk in _BLANK_LINE.split(text.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if all(_BULLET.match(line) for line in lines):
            out.append(Block("ul", [_BULLET.sub("", line) for line in lines]))
        else:
            out.append(Block("p", lines))
    return out


@router.get("/rules")
async def rules_page(request: Request, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    rules = await service.current_rules(db)
    body = rules.body if rules else service.default_rules(ctx.settings)
    context = {
        "blocks": blocks(body),
        "body": body,
        "updated_at": rules.updated_at if rules else None,
        "can_edit": viewer is not None and viewer.is_admin,
        "max_rules": service.MAX_RULES,
    }
    return render(request, "rules.html", context, viewer=viewer)


@router.get("/moderation")
async def moderation_page(request: Request, viewer: Viewer, db: Db) -> Response:
    if viewer is None:
        return RedirectResponse(login_url(request), status_code=303)
    if not viewer.is_moderator:
        raise forbidden("only moderators can open the reports queue")
    found = await service.list_reports(db, ReportStatus.open, limit=QUEUE_PAGE)
    cases = [
        {"report": QueuedReport.of_case(c), "may_act": service.may_act(viewer, c.account)}
        for c in await service.cases(db, found)
    ]
    context = {"cases": cases, "reasons": REASONS, "targets": TARGETS, "page_size": QUEUE_PAGE}
    return render(request, "moderation.html", context, viewer=viewer)


def _moment(raw: str, name: str, problems: list[str]) -> datetime | None:
    if not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        problems.append(f"{name}: give a date and time such as 2026-05-01T20:00")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _number(raw: str, name: str, problems: list[str]) -> int | None:
    if not raw.strip():
        return None
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_ID:
        problems.append(f"{name}: a whole number")
        return None
    return int(raw)


@router.get("/moderation/audit")
async def audit_page(
    request: Request,
    viewer: Viewer,
    db: Db,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    target_user: Annotated[str, Query(max_length=64)] = "",
    show_id: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before_id: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    # The filters arrive as typed into the form, so a slip is explained, not a 404.
    if viewer is None:
        return RedirectResponse(login_url(request), status_code=303)
    if not viewer.is_admin:
        raise forbidden("only admins can read the audit log")
    problems: list[str] = []
    query = AuditQuery(
        actor=actor.strip() or None,
        action=action.strip() or None,
        target_user=target_user.strip() or None,
        show_id=_number(show_id, "Show", problems),
        since=_moment(since, "Since", problems),
        until=_moment(until, "Until", problems),
        before_id=_number(before_id, "Older than", problems),
        limit=AUDIT_PAGE,
    )
    entries = [] if problems else await audit_out(db, await service.audit_log(db, query))
    filters = {
        "actor": actor,
        "action": action,
        "target_user": target_user,
        "show_id": show_id,
        "since": since,
        "until": until,
    }
    next_url = None
    if len(entries) == AUDIT_PAGE:
        kept = {k: v for k, v in filters.items() if v.strip()}
        next_url = "/moderation/audit?" + urlencode({**kept, "before_id": entries[-1].id})
    context: dict[str, Any] = {
        "entries": entries,
        "filters": filters,
        "problems": problems,
        "actions": await service.audit_actions(db),
        "next_url": next_url,
        "paged": bool(before_id.strip()),
    }
    return render(request, "audit.html", context, viewer=viewer)
