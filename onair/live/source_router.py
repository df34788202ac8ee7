"""The crew's view of the source ingest: where DJ software connects, and the show's key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from onair.accounts.deps import CurrentUser
from onair.context import Ctx, Db
from onair.media.source_keys import SOURCE_USER, source_key
from onair.shows import service as shows
from onair.shows.models import Show
from onair.stage import crew
from onair.types import PathId

router = APIRouter(prefix="/api/v1/shows", tags=["studio"])


class SourceSettings(BaseModel):
    """What DJ software needs to broadcast into the show (Icecast 2 source settings)."""

    enabled: bool = Field(description="False when this server runs no source ingest.")
    server: str = Field(description="Host name to connect to.")
    port: int = Field(description="The source ingest's port (0 when disabled).")
    mount: str = Field(description="The mount point: the show's id.")
    user: str = Field(description="The user name: always `source`.")
    key: str = Field(description="The password: the show's secret source key.")
    url: str = Field(description="The same as an icecast:// URL (ffmpeg's output).")
    connected: bool = Field(description="A source is feeding the show right now.")


async def _crew_show(show_id: PathId, user: CurrentUser, db: Db) -> Show:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    return show


CrewShow = Annotated[Show, Depends(_crew_show)]


def _settings(request: Request, ctx: Ctx, show: Show, key: str) -> SourceSettings:
    port = ctx.settings.source_port
    server = request.url.hostname or ctx.settings.host
    station = ctx.stations.get(show.id)
    live = station.studio.deck.live if station is not None else None
    mount = f"/{show.id}"
    return SourceSettings(
        enabled=port > 0,
        server=server,
        port=port,
        mount=mount,
        user=SOURCE_USER,
        key=key,
        url=f"icecast://{SOURCE_USER}:{key}@{server}:{port}{mount}",
        connected=live is not None and not live.off_air,
    )


@router.get(
    "/{show_id}/source",
    summary="The show's source settings and secret key, for DJ software (host and co-hosts)",
)
async def get_source(
    request: Request, response: Response, show: CrewShow, ctx: Ctx, db: Db
) -> SourceSettings:
    response.headers["cache-control"] = "no-store"
    return _settings(request, ctx, show, await source_key(db, ctx.clock, show))


@router.post(
    "/{show_id}/source/rotate",
    summary="Replace the show's source key (the old key stops working at once)",
)
async def rotate_source(
    request: Request, response: Response, show: CrewShow, ctx: Ctx, db: Db
) -> SourceSettings:
    response.headers["cache-control"] = "no-store"
    return _settings(request, ctx, show, await source_key(db, ctx.clock, show, rotate=True))
