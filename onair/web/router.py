"""The pages: server-rendered HTML read through the domain services; small ES modules do the rest.

Everything a page changes goes through the JSON API from the browser, so the rules live in one
place (the services behind `/api/v1`) and the pages only read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from onair.accounts.deps import MaybeUser
from onair.accounts.models import User
from onair.accounts.service import user_by_username
from onair.catalog import service as catalog
from onair.context import Ctx, Db
from onair.licensing.router import territory_view
from onair.replays import pages as replay_pages
from onair.royalties import analytics
from onair.shows import service as shows
from onair.shows.follows.service import follow_view
from onair.shows.router import ShowOut, crew_queue, now_playing
from onair.stage import crew
from onair.web.error_pages import error_page, install_html_errors
from onair.web.rendering import STATIC_DIR, login_url, make_templates, render, safe_next

router = APIRouter(include_in_schema=False)

HOME_LIVE = 24
HOME_UPCOMING = 24
HOME_RECENT = 12
HOME_TRENDING = 12


async def _viewer(request: Request, user: MaybeUser) -> User | None:
    # Kept on the request so an error page rendered later still knows who is signed in.
    request.state.viewer = user
    return user


Viewer = Annotated[User | None, Depends(_viewer)]


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(login_url(request), status_code=303)


async def _sections(
    db: Db,
    ctx: Ctx,
    *,
    genre: str | None = None,
    host: str | None = None,
    hashtag: str | None = None,
    live_sort: str | None = None,
) -> dict[str, list[ShowOut]]:
    async def listed(status: str, limit: int, sort: str | None = None) -> list[ShowOut]:
        found = await shows.list_shows(
            db,
            status=status,
            genre=genre,
            host=host,
            hashtag=hashtag,
            sort=sort,
            limit=limit,
            now=ctx.clock.now(),
        )
        return [ShowOut.of(s) for s in found]

    return {
        "live": await listed("live", HOME_LIVE, live_sort),
        "upcoming": await listed("upcoming", HOME_UPCOMING),
        "recent": await listed("recent", HOME_RECENT),
    }


@router.get("/")
async def home(request: Request, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    context: dict[str, Any] = {
        "sections": await _sections(db, ctx, live_sort="listeners"),
        "genres": await catalog.list_genres(db),
        "trending": await ctx.trending.top(db, HOME_TRENDING),
    }
    return render(request, "home.html", context, viewer=viewer)


@router.get("/genres/{slug}")
async def genre_page(request: Request, slug: str, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    genre = await catalog.genre_by_slug(db, slug)
    if genre is None:
        return await error_page(request, 404, "genre not found")
    context = {"genre": genre, "sections": await _sections(db, ctx, genre=genre.slug)}
    return render(request, "genre.html", context, viewer=viewer)


@router.get("/users/{username}")
async def host_page(request: Request, username: str, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    host = await user_by_username(db, username)
    if host is None:
        return await error_page(request, 404, "user not found")
    context = {
        "host": host,
        "sections": await _sections(db, ctx, host=host.username),
        "follow": await follow_view(db, viewer, host.id),
        "podcast": await replay_pages.host_replays(db, host),
    }
    return render(request, "host.html", context, viewer=viewer)


@router.get("/hashtags/{tag}")
async def hashtag_page(request: Request, tag: str, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    name = tag.strip().lstrip("#").lower()
    if not shows.HASHTAG.match(name):
        return await error_page(request, 404, "no such hashtag")
    context = {
        "tag": await ctx.trending.summary(db, name),
        "sections": await _sections(db, ctx, hashtag=name, live_sort="listeners"),
    }
    return render(request, "hashtag.html", context, viewer=viewer)


@router.get("/signup")
async def signup_page(
    request: Request, viewer: Viewer, next: Annotated[str, Query(max_length=2000)] = "/"
) -> Response:
    target = safe_next(next)
    if viewer is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "signup.html", {"next": target}, viewer=viewer)


@router.get("/login")
async def login_page(
    request: Request, viewer: Viewer, next: Annotated[str, Query(max_length=2000)] = "/"
) -> Response:
    target = safe_next(next)
    if viewer is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", {"next": target}, viewer=viewer)


@router.get("/shows/new")
async def new_show_page(request: Request, viewer: Viewer, db: Db) -> Response:
    if viewer is None:
        return _to_login(request)
    context = {"genres": await catalog.list_genres(db)}
    return render(request, "new_show.html", context, viewer=viewer)


@router.get("/shows/{show_id}")
async def show_page(request: Request, show_id: int, viewer: Viewer, ctx: Ctx, db: Db) -> Response:
    show = await shows.get_show(db, show_id)
    out = ShowOut.of(show, await now_playing(ctx, db, show))
    is_crew = viewer is not None and await crew.is_crew(db, show, viewer)
    follow = await follow_view(db, viewer, show.host_id)
    context = {
        "show": out,
        "territory": territory_view(request, ctx.settings, viewer.territory if viewer else None),
        "is_crew": is_crew,
        "follow": follow,
        "replays": await replay_pages.show_replays(request, db, show, viewer),
        "sees_analytics": await analytics.may_see(db, show, viewer),
    }
    return render(request, "show.html", context, viewer=viewer)


@router.get("/shows/{show_id}/console")
async def console_page(
    request: Request, show_id: int, viewer: Viewer, ctx: Ctx, db: Db
) -> Response:
    if viewer is None:
        return _to_login(request)
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, viewer)
    queue = await crew_queue(ctx, db, show)
    context = {
        "show": ShowOut.of(show, await now_playing(ctx, db, show)),
        "queue": queue,
        "queue_json": queue.model_dump(mode="json"),
        "genres": await catalog.list_genres(db),
        "sees_analytics": await analytics.may_see(db, show, viewer),
        # Where DJ software connects; the key itself is fetched only when the host asks.
        "source": {
            "server": request.url.hostname or ctx.settings.host,
            "port": ctx.settings.source_port,
        },
    }
    return render(request, "console.html", context, viewer=viewer)


def mount_web(app: FastAPI) -> None:
    """Adds the pages and /static to `app`; call after the API's JSON error handlers exist."""
    app.state.web_templates = make_templates()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    install_html_errors(app)
