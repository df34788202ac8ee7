"""Errors as HTML pages for browsers; everything under /api/ (and the other machine endpoints:
streams, oEmbed, the Alexa skill) keeps its JSON error body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from onair.accounts.models import User
from onair.accounts.service import user_for_token
from onair.context import get_onair
from onair.errors import ApiError
from onair.web.rendering import render

log = logging.getLogger("onair.web")

Handler = Callable[[Request, Exception], Awaitable[Response]]

_JSON_PREFIXES = (
    "/api/",
    "/static/",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/listen/",
    "/oembed",
    "/integrations/",
    "/metrics",  # the operations endpoints are for machines (onair.ops)
    "/healthz",
    "/readyz",
)

_TITLES = {
    403: "You can't open this page",
    404: "Page not found",
    500: "Something went wrong",
}


def wants_html(request: Request) -> bool:
    """Pages answer errors in HTML unless the caller plainly asked for JSON."""
    if request.url.path.startswith(_JSON_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def _status_and_message(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, RequestValidationError):
        # A page's only parameters are in its address (a show id, a username), so a malformed
        # one names a page that does not exist.
        return 404, "Not Found"
    return 500, "internal error"


async def _viewer(request: Request) -> User | None:
    viewer: User | None = getattr(request.state, "viewer", None)
    if viewer is not None:
        return viewer
    onair = get_onair(request)
    token = request.cookies.get(onair.settings.secret_cookie_name)
    if not token:
        return None
    async with onair.sessions() as db:
        return await user_for_token(db, onair.clock, token)


async def error_page(request: Request, status: int, message: str) -> Response:
    viewer = None
    if status < 500:
        try:
            viewer = await _viewer(request)
        except Exception:  # the error page must not fail because the database did
            log.exception("could not look up the viewer for an error page")
    return render(
        request,
        "error.html",
        {"status": status, "title": _TITLES.get(status, "That didn't work"), "message": message},
        viewer=viewer,
        status_code=status,
    )


def _headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ApiError):
        return exc.headers
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        return dict(exc.headers)
    return {}


def _html_or(original: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if wants_html(request):
            status, message = _status_and_message(exc)
            if status >= 500:
                log.exception(
                    "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
                )
            page = await error_page(request, status, message)
            # What the error says beyond its status (Retry-After on a 429, Allow on a 405)
            # holds for a browser too.
            page.headers.update(_headers(exc))
            return page
        if original is None:
            return PlainTextResponse("internal error", status_code=500)
        return await original(request, exc)

    return handle


def install_html_errors(app: FastAPI) -> None:
    """Wraps the JSON handlers `onair.errors` installed, so they must be installed first."""
    for exc_class in (ApiError, StarletteHTTPException, RequestValidationError, Exception):
        original = app.exception_handlers.get(exc_class)
        app.add_exception_handler(exc_class, _html_or(original))  # type: ignore[arg-type]
