"""HTTP 451 on every URL that delivers the program to a listener outside the service's
territories: Icecast-style MP3/AAC, HLS playlists and segments, .m3u/.pls, WHEP offers, voice
lines (they carry the program back) and replay audio.

Pure ASGI, so it costs one regular expression per request and nothing per byte of a stream.
It sits in front of `StreamFront` (which answers MP3/AAC ahead of the app) and inside the app
for everything else; the first one to see a request marks it, so the check runs once.
"""

from __future__ import annotations

import html
import logging
import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from onair.accounts.service import user_for_token
from onair.context import OnAir
from onair.errors import error_body
from onair.licensing.territories import (
    ListenerTerritory,
    listener_territory,
    territory_code,
    territory_name,
)
from onair.settings import Settings
from onair.web.rendering import SECURITY_HEADERS

log = logging.getLogger("onair.licensing")

_PROGRAM = re.compile(
    r"/listen/.+"
    r"|/replays/[0-9]+\.mp3"
    r"|/api/v1/shows/[0-9]+/(?:whep|studio/webrtc)"
)
_CHECKED = "onair.territory"


def delivers_program(method: str, path: str) -> bool:
    if _PROGRAM.fullmatch(path) is None:
        return False
    if path.startswith("/api/"):
        return method == "POST"  # the offer; ending a session stays open to anyone
    return True


class TerritoryGuard:
    def __init__(self, app: ASGIApp, onair: OnAir) -> None:
        self.app = app
        self.onair = onair

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or _CHECKED in scope
            or not delivers_program(scope["method"], scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        scope[_CHECKED] = True
        where = await self._where(scope)
        territories = self.onair.settings.territory_list
        if where.allowed(territories):
            await self.app(scope, receive, send)
            return
        log.info(
            "stream refused outside the territories path=%s territory=%s source=%s",
            scope["path"],
            where.code,
            where.source,
        )
        await unavailable(scope, where, territories)(scope, receive, send)

    async def _where(self, scope: Scope) -> ListenerTerritory:
        request = Request(scope)
        settings = self.onair.settings
        header = territory_header(request, settings)
        account = None
        token = request.cookies.get(settings.secret_cookie_name)
        if token and territory_code(header) is None:  # no header, or one that places no one
            known, account = self.onair.account_territories.get(token)
            if not known:
                async with self.onair.sessions() as db:
                    user = await user_for_token(db, self.onair.clock, token)
                account = user.territory if user else None
                self.onair.account_territories.put(token, user.id if user else None, account)
        return listener_territory(
            header=header, account=account, territories=settings.territory_list
        )


def territory_header(request: Request, settings: Settings) -> str | None:
    """The trusted CDN header's value, if the operator names one (the streams and the
    territory answer read it alike)."""
    return request.headers.get(settings.territory_header) if settings.territory_header else None


def _message(where: ListenerTerritory, territories: tuple[str, ...]) -> str:
    names = ", ".join(territory_name(t) for t in territories)
    return (
        f"OnAir's shows cannot be played in {territory_name(where.code)} ({where.code}): "
        f"its music is licensed for {names} only"
    )


def unavailable(scope: Scope, where: ListenerTerritory, territories: tuple[str, ...]) -> Response:
    """451 Unavailable For Legal Reasons: a page for browsers, JSON for everyone else."""
    message = _message(where, territories)
    accept = Request(scope).headers.get("accept", "")
    if "text/html" in accept:
        return HTMLResponse(_page(where, message), status_code=451, headers=SECURITY_HEADERS)
    return JSONResponse(
        error_body("unavailable_in_territory", message, territory=where.code),
        status_code=451,
    )


def _page(where: ListenerTerritory, message: str) -> str:
    # Self-contained (no template, script or style): it answers in front of the app too.
    fix = (
        "If you are in one of those countries, say so on the show's page (Listen, "
        "\u201cI am in\u201d), where your account's country is kept."
        if where.source != "header"
        else "Your network reports that you are there."
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Not available where you are · OnAir</title>\n"
        '<link rel="stylesheet" href="/static/onair.css">\n</head>\n<body>\n'
        '<main id="main" class="error-page">\n<p class="error-code">451</p>\n'
        "<h1>Not available where you are</h1>\n"
        f"<p>{html.escape(message)}.</p>\n<p>{html.escape(fix)}</p>\n"
        '<p><a class="button" href="/">Back to the home page</a></p>\n</main>\n</body>\n</html>\n'
    )
