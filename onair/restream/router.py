"""Restream over HTTP: the host's RTMP destinations, and pushing a live show to them.

Destinations belong to the host (set once, used by every show): only their owner sees them, and
only one at a time carries its stream key in full. A live show's pushes are the host's alone to
start, stop and watch.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from pydantic import AfterValidator, BaseModel, Field

from onair.accounts.deps import CurrentUser
from onair.accounts.models import User
from onair.context import Ctx, Db
from onair.errors import ApiError, Error
from onair.media.feed import ProgramFeed
from onair.media.restream import PushState, PushStatus
from onair.restream import service
from onair.restream.models import RestreamDestination
from onair.shows import service as shows
from onair.shows.models import Show
from onair.types import PathId

router = APIRouter(prefix="/api/v1", tags=["restream"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "Sign in first."},
    404: {"model": Error, "description": "No such destination of yours."},
}
_SHOW_REFUSALS: dict[int | str, dict[str, Any]] = {
    **_REFUSALS,
    403: {"model": Error, "description": "Only the show's host."},
    409: {"model": Error, "description": "The show is not live."},
}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _rtmp_url(value: str) -> str:
    value = value.strip()
    if not value.lower().startswith(("rtmp://", "rtmps://")):
        raise ValueError("the URL must start with rtmp:// or rtmps://")
    if _CONTROL.search(value):
        raise ValueError("the URL may not contain spaces or control characters")
    if not urlsplit(value).hostname:
        raise ValueError("the URL must name a server, as rtmp://live.twitch.tv/app")
    return value


def _stream_key(value: str) -> str:
    value = value.strip()
    if _CONTROL.search(value):
        raise ValueError("the stream key may not contain spaces or control characters")
    return value


def _name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("the name may not be blank")
    return value


Name = Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_name)]
RtmpUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=512,
        description="rtmp:// or rtmps://, e.g. rtmp://live.twitch.tv/app.",
    ),
    AfterValidator(_rtmp_url),
]
StreamKey = Annotated[
    str,
    Field(max_length=512, description="Appended to the URL; a secret."),
    AfterValidator(_stream_key),
]


class DestinationIn(BaseModel):
    name: Name
    url: RtmpUrl
    stream_key: StreamKey = ""
    enabled: bool = Field(
        default=True, description="Start it whenever one of your shows goes live."
    )


class DestinationEdit(BaseModel):
    name: Name | None = None
    url: RtmpUrl | None = None
    stream_key: StreamKey | None = None
    enabled: bool | None = None

    def fields(self) -> service.DestinationFields:
        return service.DestinationFields(self.name, self.url, self.stream_key, self.enabled)


class DestinationOut(BaseModel):
    id: int
    name: str
    url: str
    stream_key: str = Field(description="In full for one destination, masked (••••abcd) in lists.")
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, destination: RestreamDestination, *, full_key: bool = False) -> DestinationOut:
        key = destination.stream_key
        return cls(
            id=destination.id,
            name=destination.name,
            url=destination.url,
            stream_key=key if full_key else service.masked_key(key),
            enabled=destination.enabled,
            created_at=destination.created_at,
            updated_at=destination.updated_at,
        )


class PushOut(BaseModel):
    state: PushState = Field(
        description="connecting, live, retrying (with the last error) or stopped."
    )
    error: str | None = Field(description="The last failure (the stream key never appears).")
    failures: int = Field(description="Failed attempts in a row.")
    retry_at: datetime | None = Field(
        description="The next attempt, while waiting to retry; null while an attempt is under way."
    )
    live_since: datetime | None
    sent_s: float = Field(description="Seconds of program sent on the current connection.")
    dropped: int = Field(description="Audio packets lost because the destination fell behind.")

    @classmethod
    def of(cls, status: PushStatus) -> PushOut:
        return cls(
            state=status.state,
            error=status.error,
            failures=status.failures,
            retry_at=_when(status.retry_at),
            live_since=_when(status.live_since),
            sent_s=status.sent_s,
            dropped=status.dropped,
        )


class ShowDestination(BaseModel):
    destination: DestinationOut
    push: PushOut | None = Field(description="Null: never pushed to during this show.")


class ShowRestreamOut(BaseModel):
    show_id: int
    live: bool
    destinations: list[ShowDestination]


def _when(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


# --- the host's destinations


@router.get(
    "/restream/destinations",
    response_model=list[DestinationOut],
    summary="Your restream destinations (stream keys masked)",
    responses=_REFUSALS,
)
async def list_destinations(user: CurrentUser, db: Db) -> list[DestinationOut]:
    return [DestinationOut.of(d) for d in await service.destinations_of(db, user.id)]


@router.post(
    "/restream/destinations",
    response_model=DestinationOut,
    status_code=201,
    summary="Add a restream destination (Twitch, YouTube, any RTMP server)",
    responses=_REFUSALS,
)
async def add_destination(
    body: DestinationIn, user: CurrentUser, ctx: Ctx, db: Db
) -> DestinationOut:
    fields = service.DestinationFields(body.name, body.url, body.stream_key, body.enabled)
    limit = ctx.settings.restream_max_destinations
    destination = await service.add_destination(db, ctx.clock, user, fields, limit=limit)
    await db.commit()
    return DestinationOut.of(destination, full_key=True)


@router.get(
    "/restream/destinations/{destination_id}",
    response_model=DestinationOut,
    summary="One of your destinations, with its stream key in full",
    responses=_REFUSALS,
)
async def get_destination(destination_id: PathId, user: CurrentUser, db: Db) -> DestinationOut:
    destination = await service.own_destination(db, user, destination_id)
    return DestinationOut.of(destination, full_key=True)


@router.patch(
    "/restream/destinations/{destination_id}",
    response_model=DestinationOut,
    summary="Rename, move, re-key, enable or disable a destination",
    description="A push running to it from your live show restarts with the new URL or key.",
    responses=_REFUSALS,
)
async def edit_destination(
    destination_id: PathId, body: DestinationEdit, user: CurrentUser, ctx: Ctx, db: Db
) -> DestinationOut:
    destination = await service.own_destination(db, user, destination_id)
    moved = service.edit_destination(ctx.clock, destination, body.fields())
    await db.commit()
    if moved:
        await _restart_if_pushing(ctx, db, user, destination)
    return DestinationOut.of(destination, full_key=True)


@router.delete(
    "/restream/destinations/{destination_id}",
    status_code=204,
    summary="Remove a destination (a push to it stops)",
    responses=_REFUSALS,
)
async def delete_destination(
    destination_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> Response:
    destination = await service.own_destination(db, user, destination_id)
    show = await service.live_show_of(db, user.id)
    feed = ctx.stations.feed(show.id) if show is not None else None
    if feed is not None:
        service.stop_push(feed, destination.id)
    await db.delete(destination)
    await db.commit()
    return Response(status_code=204)


async def _restart_if_pushing(
    ctx: Ctx, db: Db, user: User, destination: RestreamDestination
) -> None:
    show = await service.live_show_of(db, user.id)
    feed = ctx.stations.feed(show.id) if show is not None else None
    status = service.push_status(feed, destination.id)
    if feed is None or show is None or status is None or status.state is PushState.stopped:
        return
    settings = service.restream_settings(ctx.settings)
    service.start_push(feed, destination, service.card_of(show, user), settings)


# --- a live show's pushes


async def _show_of_host(db: Db, show_id: int, user: User) -> Show:
    show = await shows.get_show(db, show_id)
    service.require_show_host(show, user)
    return show


@router.get(
    "/shows/{show_id}/restream",
    response_model=ShowRestreamOut,
    summary="Where the show is pushed and how each push is doing (the host only)",
    responses=_SHOW_REFUSALS,
)
async def show_restream(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> ShowRestreamOut:
    show = await _show_of_host(db, show_id, user)
    feed = ctx.stations.feed(show.id)
    return ShowRestreamOut(
        show_id=show.id,
        live=feed is not None,
        destinations=[
            ShowDestination(destination=DestinationOut.of(d), push=_push(feed, d.id))
            for d in await service.destinations_of(db, user.id)
        ],
    )


def _push(feed: ProgramFeed | None, destination_id: int) -> PushOut | None:
    status = service.push_status(feed, destination_id)
    return PushOut.of(status) if status is not None else None


@router.post(
    "/shows/{show_id}/restream/{destination_id}/start",
    response_model=ShowDestination,
    summary="Start pushing the live show to a destination (again, if it was)",
    responses=_SHOW_REFUSALS,
)
async def start_push(
    show_id: PathId, destination_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> ShowDestination:
    show = await _show_of_host(db, show_id, user)
    destination = await service.own_destination(db, user, destination_id)
    feed = ctx.stations.feed(show.id)
    if feed is None:
        raise ApiError(409, "not_live", f"show {show.id} is not live")
    settings = service.restream_settings(ctx.settings)
    status = service.start_push(feed, destination, service.card_of(show, user), settings)
    return ShowDestination(destination=DestinationOut.of(destination), push=PushOut.of(status))


@router.post(
    "/shows/{show_id}/restream/{destination_id}/stop",
    response_model=ShowDestination,
    summary="Stop pushing the show to a destination",
    responses=_SHOW_REFUSALS,
)
async def stop_push(
    show_id: PathId, destination_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> ShowDestination:
    show = await _show_of_host(db, show_id, user)
    destination = await service.own_destination(db, user, destination_id)
    feed = ctx.stations.feed(show.id)
    status = service.stop_push(feed, destination.id) if feed is not None else None
    push = PushOut.of(status) if status is not None else None
    return ShowDestination(destination=DestinationOut.of(destination), push=push)
