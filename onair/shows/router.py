from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.accounts.router import PublicUser
from onair.catalog.models import Track
from onair.catalog.schemas import TrackOut
from onair.cluster import playhead
from onair.context import Ctx, Db, OnAir
from onair.errors import ApiError, not_found
from onair.licensing.router import ProblemOut
from onair.licensing.service import Check, Licensing, check_queue, refuse_new_breaches
from onair.shows import service
from onair.shows.browse.schemas import GenreMatchOut
from onair.shows.browse.service import genre_match
from onair.shows.covers import save_cover
from onair.shows.models import QueueItem, Show, ShowStatus
from onair.stage import crew
from onair.types import MAX_ID, BodyId, PathId

log = logging.getLogger("onair.shows")

router = APIRouter(prefix="/api/v1/shows", tags=["shows"])


class ShowCreate(BaseModel):
    title: str = Field(min_length=1, max_length=120, examples=["Sunday Morning Jazz"])
    description: str = Field(default="", max_length=4000)
    genre: str | None = Field(default=None, max_length=64, examples=["Jazz"])
    hashtags: list[str] = Field(default_factory=list, max_length=10, examples=[["jazz", "brunch"]])
    scheduled_start: datetime | None = Field(
        default=None, description="When the show is planned to start (ISO 8601 with zone)."
    )
    clean: bool = Field(default=False, description="No songs with explicit lyrics.")


class ShowEdit(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=4000)
    genre: str | None = Field(default=None, max_length=64)
    hashtags: list[str] | None = Field(default=None, max_length=10)
    scheduled_start: datetime | None = Field(
        default=None, description="A new start time; an explicit null clears it."
    )
    clean: bool | None = Field(default=None, description="No songs with explicit lyrics.")


class QueueItemOut(BaseModel):
    id: int
    position: int
    state: str
    track: TrackOut
    problems: list[ProblemOut] = Field(
        default_factory=list,
        description="Licence and programming-rule problems at the moment it would play "
        "(the crew's view).",
    )
    plays_at: datetime | None = Field(
        default=None, description="When it would be heard, projected (the crew's view)."
    )

    @classmethod
    def of(cls, item: QueueItem, check: Check | None = None) -> QueueItemOut:
        return cls(
            id=item.id,
            position=item.position,
            state=item.state,
            track=TrackOut.of(item.track),
            problems=[ProblemOut.of(p) for p in check.problems] if check else [],
            plays_at=check.at if check else None,
        )


class NowPlayingOut(BaseModel):
    """What listeners hear now: a song from the host's queue or one the auto-DJ chose."""

    track: TrackOut
    queue_item_id: int | None
    auto_dj: bool


async def now_playing(ctx: OnAir, db: AsyncSession, show: Show) -> NowPlayingOut | None:
    """The song on air: from the studio when it runs here, else from the playhead its node
    saves (an auto-DJ pick is in no queue), else the queue item marked playing."""
    station = ctx.stations.get(show.id)
    if station is not None:
        deck = station.studio.deck.now_playing
        on_air = playhead.OnAir(deck.track_id, deck.queue_item_id) if deck else None
    else:
        on_air = await playhead.on_air(db, show.id) if show.status is ShowStatus.live else None
        if on_air is None:
            item = await service.now_playing(db, show)
            if item is None:
                return None
            return NowPlayingOut(
                track=TrackOut.of(item.track), queue_item_id=item.id, auto_dj=False
            )
    track = await db.get(Track, on_air.track_id) if on_air and on_air.track_id else None
    if on_air is None or track is None:
        return None
    return NowPlayingOut(
        track=TrackOut.of(track),
        queue_item_id=on_air.queue_item_id,
        auto_dj=on_air.queue_item_id is None,
    )


class ShowOut(BaseModel):
    id: int
    title: str
    description: str
    genre: str | None
    hashtags: list[str]
    status: ShowStatus
    scheduled_start: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    host: PublicUser
    cover_url: str | None
    clean: bool = Field(default=False, description="No songs with explicit lyrics.")
    now_playing: NowPlayingOut | None = None
    listeners: int | None = Field(
        default=None, description="Listening now (live shows; updated every few seconds)."
    )
    listeners_peak: int | None = Field(
        default=None, description="The most listening at once (shows that went on air)."
    )
    genre_match: GenreMatchOut | None = Field(
        default=None, description="How well what it played matches its genre (once on air)."
    )

    @classmethod
    def of(cls, show: Show, now_playing: NowPlayingOut | None = None) -> ShowOut:
        return cls(
            id=show.id,
            title=show.title,
            description=show.description,
            genre=show.genre.name if show.genre else None,
            hashtags=show.hashtags,
            status=show.status,
            scheduled_start=show.scheduled_start,
            started_at=show.started_at,
            ended_at=show.ended_at,
            host=PublicUser.model_validate(show.host),
            cover_url=_cover_url(show),
            clean=show.clean,
            now_playing=now_playing,
            listeners=show.listeners_now if show.status is ShowStatus.live else None,
            listeners_peak=show.listeners_peak if show.status is not ShowStatus.scheduled else None,
            genre_match=GenreMatchOut.of(match) if (match := genre_match(show)) else None,
        )


def _cover_url(show: Show) -> str | None:
    if not show.cover_path:
        return None
    # The file name changes on every upload, so the URL can be cached for good.
    return f"/api/v1/shows/{show.id}/cover?v={Path(show.cover_path).stem.rsplit('-', 1)[-1]}"


class QueueAdd(BaseModel):
    track_id: BodyId
    position: int | None = Field(default=None, ge=0, description="0 is next; omitted is last.")


class QueueOrder(BaseModel):
    item_ids: list[BodyId] = Field(max_length=service.MAX_QUEUE)


class QueueOut(BaseModel):
    now_playing: QueueItemOut | None
    upcoming: list[QueueItemOut]


def _fields(body: ShowCreate | ShowEdit) -> service.ShowFields:
    return service.ShowFields(
        clean=body.clean,
        title=body.title,
        description=body.description,
        genre=body.genre,
        hashtags=body.hashtags,
        scheduled_start=body.scheduled_start,
        clear_schedule="scheduled_start" in body.model_fields_set and body.scheduled_start is None,
    )


@router.post("", status_code=201, response_model=ShowOut, summary="Create a show (scheduled)")
async def create_show(body: ShowCreate, user: CurrentUser, ctx: Ctx, db: Db) -> ShowOut:
    show = await service.create_show(db, ctx.clock, user, _fields(body))
    await db.commit()
    if show.scheduled_start is not None:
        await ctx.notifier.show_scheduled(show)
    return ShowOut.of(show)


@router.get("", response_model=list[ShowOut], summary="List shows")
async def list_shows(
    db: Db,
    ctx: Ctx,
    status: Annotated[
        Literal["live", "upcoming", "recent"] | None,
        Query(description="live now; upcoming, soonest first; recent, latest ended first"),
    ] = None,
    genre: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Shows that claim the genre or mostly play it, those that really play "
            "it first (unless sort says otherwise).",
        ),
    ] = None,
    host: Annotated[str | None, Query(max_length=32, description="A host's username.")] = None,
    hashtag: Annotated[
        str | None, Query(max_length=65, description="Shows carrying the hashtag (# optional).")
    ] = None,
    sort: Annotated[
        Literal["listeners", "match"] | None,
        Query(
            description="listeners: most listened first (live now, then peak); match: by how "
            "much of what they played is in `genre` (the default when a genre is given). "
            "Without it each status has its own order."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[ShowOut]:
    if sort == "match" and not genre:
        raise ApiError(422, "invalid", "sort=match ranks by a genre: give genre too")
    shows = await service.list_shows(
        db,
        status=status,
        genre=genre,
        host=host,
        hashtag=hashtag,
        sort=sort,
        limit=limit,
        offset=offset,
        now=ctx.clock.now(),
    )
    return [ShowOut.of(s) for s in shows]


@router.get("/{show_id}", response_model=ShowOut, summary="One show, with what is playing")
async def get_show(show_id: PathId, ctx: Ctx, db: Db) -> ShowOut:
    show = await service.get_show(db, show_id)
    return ShowOut.of(show, await now_playing(ctx, db, show))


@router.patch("/{show_id}", response_model=ShowOut, summary="Edit a show (host only)")
async def edit_show(
    show_id: PathId, body: ShowEdit, user: CurrentUser, ctx: Ctx, db: Db
) -> ShowOut:
    show = await service.get_show(db, show_id)
    service.require_host(show, user)
    start = show.scheduled_start
    await service.edit_show(db, ctx.clock, show, _fields(body))
    await db.commit()
    if body.clean is not None and show.status is ShowStatus.live:
        await ctx.stations.queue_changed(show.id)  # a clean show drops its explicit songs
    if show.scheduled_start not in (None, start) and show.status is ShowStatus.scheduled:
        await ctx.notifier.show_scheduled(show)
    return ShowOut.of(show)


@router.post("/{show_id}/live", response_model=ShowOut, summary="Go live (host only)")
async def go_live(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> ShowOut:
    show = await service.get_show(db, show_id)
    service.require_host(show, user)
    was_live = show.status is ShowStatus.live
    await service.go_live(db, ctx.clock, show)
    await db.commit()
    try:
        await ctx.stations.start(show.id)
    except Exception:
        log.exception("studio failed to start show=%s", show.id)
        if not was_live:
            await service.revert_to_scheduled(db, show)
            await db.commit()
        raise ApiError(503, "studio_failed", "the studio could not start; try again") from None
    if not was_live:
        await ctx.notifier.show_went_live(show)
    return ShowOut.of(show)


@router.post("/{show_id}/end", response_model=ShowOut, summary="End the show (host only)")
async def end_show(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> ShowOut:
    show = await service.get_show(db, show_id)
    service.require_host(show, user)
    await ctx.stations.stop(show.id)
    await service.end_show(db, ctx.clock, show)
    await db.commit()
    return ShowOut.of(show)


@router.put("/{show_id}/cover", response_model=ShowOut, summary="Upload a cover image (host only)")
async def upload_cover(
    show_id: PathId, file: UploadFile, request: Request, user: CurrentUser, ctx: Ctx, db: Db
) -> ShowOut:
    show = await service.get_show(db, show_id)
    service.require_host(show, user)
    limit = ctx.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"the cover must be at most {limit // 1024 // 1024} MiB")
    path = await asyncio.to_thread(save_cover, data, ctx.settings.upload_dir / "covers", show.id)
    old = show.cover_path
    show.cover_path = str(path)
    show.updated_at = ctx.clock.now()
    await db.commit()
    if old:
        Path(old).unlink(missing_ok=True)
    return ShowOut.of(show)


@router.get("/{show_id}/cover", summary="A show's cover image", response_class=FileResponse)
async def cover(show_id: PathId, db: Db) -> FileResponse:
    show = await service.get_show(db, show_id)
    if not show.cover_path or not Path(show.cover_path).is_file():
        raise not_found("cover")
    return FileResponse(
        show.cover_path,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get(
    "/{show_id}/queue",
    response_model=QueueOut,
    summary="The show's queue",
    description="The host and co-hosts see every queued song; everyone else only what is "
    "playing now, "
    "because announcing songs in advance is not allowed on licensed webcasts.",
)
async def get_queue(show_id: PathId, user: MaybeUser, ctx: Ctx, db: Db) -> QueueOut:
    show = await service.get_show(db, show_id)
    if user is not None and await crew.is_crew(db, show, user):
        return await crew_queue(ctx, db, show)
    return queue_out(await service.queue_items(db, show), crew_view=False)


def queue_out(
    items: list[QueueItem], *, crew_view: bool, checks: dict[int, Check] | None = None
) -> QueueOut:
    """Only the crew sees the songs still to come."""
    playing = next((i for i in items if i.state == "playing"), None)
    upcoming = [i for i in items if i.state == "queued"]
    if not crew_view:
        upcoming = []
    checks = checks or {}
    return QueueOut(
        now_playing=QueueItemOut.of(playing) if playing else None,
        upcoming=[QueueItemOut.of(i, checks.get(i.id)) for i in upcoming],
    )


async def crew_queue(ctx: OnAir, db: AsyncSession, show: Show) -> QueueOut:
    """The whole queue, each song with the problems it would meet when it plays."""
    items = await service.queue_items(db, show)
    checks = await check_queue(db, Licensing.of(ctx.settings, ctx.clock), show)
    return queue_out(items, crew_view=True, checks=checks)


@router.post("/{show_id}/queue", status_code=201, response_model=QueueOut, summary="Queue a song")
async def add_to_queue(
    show_id: PathId, body: QueueAdd, user: CurrentUser, ctx: Ctx, db: Db
) -> QueueOut:
    show = await service.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    licensing = Licensing.of(ctx.settings, ctx.clock)
    await service.add_to_queue(db, ctx.clock, show, user, body.track_id, body.position, licensing)
    await db.commit()
    await ctx.stations.queue_changed(show.id)
    return await crew_queue(ctx, db, show)


@router.delete("/{show_id}/queue/{item_id}", response_model=QueueOut, summary="Unqueue a song")
async def remove_from_queue(
    show_id: PathId, item_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> QueueOut:
    show = await service.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    await service.remove_from_queue(db, show, item_id)
    await db.commit()
    await ctx.stations.queue_changed(show.id)
    return await crew_queue(ctx, db, show)


@router.put("/{show_id}/queue", response_model=QueueOut, summary="Reorder the queued songs")
async def reorder_queue(
    show_id: PathId, body: QueueOrder, user: CurrentUser, ctx: Ctx, db: Db
) -> QueueOut:
    show = await service.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    licensing = Licensing.of(ctx.settings, ctx.clock)
    before = await check_queue(db, licensing, show) if licensing.block else {}
    await service.reorder_queue(db, show, body.item_ids)
    if licensing.block:
        await refuse_new_breaches(db, licensing, show, before)
    await db.commit()
    await ctx.stations.queue_changed(show.id)
    return await crew_queue(ctx, db, show)
