"""The discovery pages: the one search box, a song's page and an artist's page.

They read the same services as the API; the search page answers without JavaScript and
search.js refines it as the user types.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from onair.context import Ctx, Db
from onair.shows.discovery import router as api
from onair.shows.discovery import search
from onair.shows.discovery.schemas import SearchOut
from onair.types import PathId
from onair.web.rendering import render
from onair.web.router import Viewer

router = APIRouter(include_in_schema=False)


@router.get("/search")
async def search_page(
    request: Request,
    viewer: Viewer,
    ctx: Ctx,
    db: Db,
    q: Annotated[str, Query(max_length=search.MAX_QUERY_LENGTH)] = "",
) -> Response:
    results = await search.discover(
        db, q, now=ctx.clock.now(), recent=api.recent_window(ctx.settings.recently_played_hours)
    )
    context = {"q": q, "results": SearchOut.of(results), "searched": bool(q.strip())}
    return render(request, "search.html", context, viewer=viewer)


@router.get("/tracks/{track_id}")
async def track_page(
    request: Request, track_id: PathId, viewer: Viewer, ctx: Ctx, db: Db
) -> Response:
    plays = await api.track_plays(track_id, ctx, db)
    return render(request, "track.html", {"plays": plays}, viewer=viewer)


@router.get("/artists/{artist_id}")
async def artist_page(
    request: Request, artist_id: PathId, viewer: Viewer, ctx: Ctx, db: Db
) -> Response:
    artist = await api.artist_detail(artist_id, ctx, db)
    return render(request, "artist.html", {"artist": artist}, viewer=viewer)
