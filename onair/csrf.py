"""Cross-site request forgery: state-changing requests a browser marks as cross-site are refused.

A browser attaches the session cookie to requests another site makes it send (SameSite=Lax
still lets top-level form posts through from a same-site origin, and older browsers ignore
it), and it says where such a request comes from in `Sec-Fetch-Site` and `Origin`. A request
with neither header comes from no browser (curl, ffmpeg, the test client) and carries no
ambient credentials, so it passes. The same test guards the room WebSocket's handshake,
which carries cookies too: `origin_allowed` is what its handler calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from onair.errors import error_body

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Clients that are no browser, or pages of other sites on purpose: stream ingest and pulls,
# integrations (Alexa, Icecast sources) and WHEP listening, which a listener may embed. None
# of them acts on a session cookie.
_EXEMPT = re.compile(r"^(?:/listen/|/integrations/|/api/v1/shows/[^/]+/whep(?:/[^/]+)?$)")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _origin_tuple(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, with the scheme's default port filled in."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.path or parts.query or parts.fragment or parts.username:
        return None
    return scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS[scheme]


def _same_origin(origin: str, scheme: str, host: str) -> bool:
    own_scheme = _HTTP_SCHEMES.get(scheme.lower())
    if own_scheme is None or not host:
        return False
    theirs = urlsplit(origin)
    their_scheme = theirs.scheme.lower()
    if their_scheme not in _DEFAULT_PORTS:
        return False  # "null" (sandboxed frames, file: pages) and anything stranger
    mine = _origin_tuple(own_scheme, host)
    return mine is not None and mine == _origin_tuple(their_scheme, theirs.netloc)


def origin_allowed(headers: Mapping[str, str], scheme: str, host: str) -> bool:
    """Whether a request may act with the user's cookies: it comes from no browser, or from a
    page of this very origin.

    `headers` is case-insensitive (starlette's `Headers`) or has lower-case names; `scheme` is
    the request's own (`http`, `https`, `ws`, `wss`, as the ASGI scope has it behind uvicorn's
    proxy_headers), and `host` its Host header (`radio.example:8000`).
    """
    origin = headers.get("origin")
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site == "cross-site":
        return False
    if origin is None:
        # A browser that sends Sec-Fetch-Site always sends Origin on these requests, so a
        # same-site request without one cannot be matched to this origin.
        return fetch_site != "same-site"
    return _same_origin(origin, scheme, host)


class CrossSiteGuard:
    """Refuses state-changing HTTP requests that `origin_allowed` refuses, with 403 `csrf`.

    Pure ASGI (like `BodyLimit`), so streams and other responses are not wrapped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        if _EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if origin_allowed(headers, scope["scheme"], headers.get("host", "")):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            error_body("csrf", "cross-site requests may not change anything here"),
            status_code=403,
        )
        await response(scope, receive, send)
