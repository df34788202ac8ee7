"""How pages are rendered: one autoescaping Jinja2 environment, its filters and safe headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from onair.accounts.models import User
from onair.catalog.text import slugify
from onair.integrations.links import embed_snippet, page_base

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# Pages carry no inline script or style, so the policy can forbid both: an escaping slip
# somewhere would still not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def mmss(seconds: float | None) -> str:
    """A song's length as m:ss (minutes keep counting past an hour, as players show it)."""
    if seconds is None or seconds < 0:
        return ""
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""


def utc_text(moment: datetime | None) -> str:
    """The fallback shown until the browser rewrites it in the viewer's own zone."""
    if moment is None:
        return ""
    m = moment.astimezone(UTC)
    return f"{m:%a} {m.day} {m:%b %Y}, {m:%H:%M} UTC"


def safe_next(raw: str | None) -> str:
    """Only same-site paths may follow a log-in, so a link cannot bounce a user elsewhere."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    if any(ord(ch) < 0x20 for ch in raw):
        return "/"
    return raw


def login_url(request: Request) -> str:
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return "/login?next=" + quote(here, safe="/")


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mmss"] = mmss
    env.filters["iso"] = iso
    env.filters["utc"] = utc_text
    env.filters["slug"] = slugify
    env.globals["public_base"] = page_base
    env.globals["embed_snippet"] = embed_snippet
    return Jinja2Templates(env=env)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: User | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.web_templates
    page = {
        "user": viewer,
        "q": "",
        "login_url": login_url(request),
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
