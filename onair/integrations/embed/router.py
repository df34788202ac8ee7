"""The embeddable player (`/embed/{show_id}`) and oEmbed (`/oembed`), so any website can carry
a show: a blog pastes the iframe from the show page's "Share / embed", or a site that speaks
oEmbed (WordPress, Ghost, Discourse…) turns a pasted show link into the player by itself, found
through the show page's `<link rel="alternate" type="application/json+oembed">`.

The player page is the one page other sites may frame (`frame-ancestors *`); every other page
keeps `frame-ancestors 'none'`. It listens with the show page's own player (listen.js).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from onair.context import Ctx, Db
from onair.errors import ApiError, error_body
from onair.integrations.links import EMBED_HEIGHT, EMBED_WIDTH, iframe_html, public_base
from onair.shows import service as shows
from onair.shows.router import ShowOut, now_playing
from onair.web.error_pages import error_page
from onair.web.rendering import SECURITY_HEADERS, render

__all__ = ["EMBED_HEADERS", "oembed_router", "pages"]

MIN_SIDE = 100
# Links to a show that oEmbed answers for: its page, or the player itself.
_SHOW_PATH = re.compile(r"^/(?:shows|embed)/([0-9]{1,18})/?$")

pages = APIRouter(include_in_schema=False)
oembed_router = APIRouter(tags=["integrations"])


EMBED_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", "frame-ancestors *"
    ),
}
"""The pages' security headers, but framable by any site."""


@pages.get("/embed/{show_id}")
async def embed_page(request: Request, show_id: int, ctx: Ctx, db: Db) -> Response:
    try:
        show = await shows.get_show(db, show_id)
    except ApiError:
        response = await error_page(request, 404, "show not found")
        response.headers.update(EMBED_HEADERS)
        return response
    base = public_base(request, ctx.settings.public_url)
    context = {
        "show": ShowOut.of(show, await now_playing(ctx, db, show)),
        "show_url": f"{base}/shows/{show.id}",
    }
    response = render(request, "embed.html", context)
    response.headers.update(EMBED_HEADERS)
    return response


class OEmbed(BaseModel):
    """An oEmbed 1.0 "rich" response: the player in an iframe."""

    version: Literal["1.0"] = "1.0"
    type: Literal["rich"] = "rich"
    title: str
    author_name: str
    author_url: str
    provider_name: str = "OnAir"
    provider_url: str
    html: str = Field(description="The iframe of /embed/{show_id}.")
    width: int
    height: int
    cache_age: int = 3600


def _not_found(message: str) -> JSONResponse:
    return JSONResponse(error_body("not_found", message), status_code=404)


@oembed_router.get(
    "/oembed",
    response_model=OEmbed,
    summary="oEmbed for a show's page: its embeddable player",
    description="The oEmbed 1.0 endpoint (https://oembed.com): `url` is a show's page (or its "
    "player) on this server. JSON only: format=xml is answered 501, as the spec says.",
    responses={501: {"description": "format=xml: only JSON is offered (oEmbed 2.3.4)."}},
)
async def oembed(
    request: Request,
    ctx: Ctx,
    db: Db,
    url: Annotated[str, Query(max_length=2000)],
    format: Annotated[Literal["json", "xml"], Query(description="json; xml is 501")] = "json",
    maxwidth: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    maxheight: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Any:
    if format != "json":
        return JSONResponse(
            error_body("not_implemented", "only format=json is offered"), status_code=501
        )
    base = public_base(request, ctx.settings.public_url)
    # A link to the public address, or to the one this request came to (behind the proxy).
    show_id = _show_of(url, base)
    if show_id is None:
        show_id = _show_of(url, public_base(request, ""))
    if show_id is None:
        return _not_found("not a show's link on this server")
    try:
        show = await shows.get_show(db, show_id)
    except ApiError:
        return _not_found("show not found")
    width = max(MIN_SIDE, min(EMBED_WIDTH, maxwidth or EMBED_WIDTH))
    height = max(MIN_SIDE, min(EMBED_HEIGHT, maxheight or EMBED_HEIGHT))
    return OEmbed(
        title=show.title,
        author_name=show.host.display_name,
        author_url=f"{base}/users/{show.host.username}",
        provider_url=base + "/",
        html=iframe_html(f"{base}/embed/{show.id}", show.title, width, height),
        width=width,
        height=height,
    )


def _show_of(url: str, base: str) -> int | None:
    """The show id a link names, when it is one of this server's show pages or players."""
    try:
        link, own = urlsplit(url), urlsplit(base)
        if link.scheme not in ("http", "https") or not link.hostname or link.username:
            return None
        same_host = (link.hostname, link.port) == (own.hostname, own.port)
    except ValueError:
        return None
    prefix = own.path.rstrip("/")
    path = link.path
    if not same_host or not path.startswith(prefix + "/"):
        return None
    match = _SHOW_PATH.match(path[len(prefix) :])
    return int(match[1]) if match else None
