"""Replays over HTTP: publish, list and unpublish under /api/v1; the audio (with Range), the
chapters and each host's podcast feed at plain URLs podcast apps fetch without a cookie."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.context import Db
from onair.errors import Error, forbidden, not_found
from onair.replays import service
from onair.replays.artwork import podcast_artwork
from onair.replays.feed import CHAPTERS_TYPE, episode_title, podcast_xml
from onair.replays.models import Replay, ReplayKind, ReplayState
from onair.replays.service import Replays
from onair.shows import service as shows
from onair.shows.follows.service import host_of
from onair.shows.models import Show
from onair.types import PathId

router = APIRouter(prefix="/api/v1", tags=["replays"])
files = APIRouter(include_in_schema=False)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "Sign in first."},
    403: {"model": Error, "description": "Only the show's host."},
    404: {"model": Error, "description": "No such show or replay."},
}


def get_replays(request: Request) -> Replays:
    replays: Replays = request.app.state.replays
    return replays


ReplaysDep = Annotated[Replays, Depends(get_replays)]


class Chapter(BaseModel):
    startTime: float = Field(description="Seconds from the start of the replay.")
    title: str


class ReplayOut(BaseModel):
    id: int
    show_id: int
    kind: ReplayKind
    state: ReplayState = Field(description="processing, then ready (or failed, with an error).")
    title: str
    error: str | None
    duration_s: float
    bytes: int
    audio_url: str | None = Field(description="The MP3, once ready (Range requests work).")
    chapters_url: str | None = Field(description="Podcasting 2.0 JSON chapters, once ready.")
    chapters: list[Chapter]
    created_at: datetime
    ready_at: datetime | None

    @classmethod
    def of(cls, replay: Replay, show: Show) -> ReplayOut:
        ready = replay.state is ReplayState.ready
        return cls(
            id=replay.id,
            show_id=replay.show_id,
            kind=replay.kind,
            state=replay.state,
            title=episode_title(replay, show),
            error=replay.error,
            duration_s=round(replay.duration_s, 3),
            bytes=replay.bytes,
            audio_url=f"/replays/{replay.id}.mp3" if ready else None,
            chapters_url=f"/replays/{replay.id}/chapters.json" if ready else None,
            chapters=[Chapter(**c) for c in service.chapters_of(replay)],
            created_at=replay.created_at,
            ready_at=replay.ready_at,
        )


class BlockingTrackOut(BaseModel):
    id: int
    title: str
    artists: list[str]


class ReplayOptionsOut(BaseModel):
    recorded_s: float = Field(description="How much of the show was recorded.")
    talk_allowed: bool
    full_allowed: bool
    full_blocked_by: list[BlockingTrackOut] = Field(
        description="Songs whose licence forbids on-demand use: they rule out a full replay."
    )


class PublishIn(BaseModel):
    kind: ReplayKind = Field(
        description="talk: the music cut out; full: everything (every song's licence must "
        "allow on-demand use)."
    )


@router.get(
    "/shows/{show_id}/replays",
    response_model=list[ReplayOut],
    summary="A show's replays",
    description="Everyone sees the ready ones; the host and moderators also those processing "
    "or failed.",
    responses={404: _REFUSALS[404]},
)
async def list_replays(show_id: PathId, user: MaybeUser, db: Db) -> list[ReplayOut]:
    show = await shows.get_show(db, show_id)
    return [ReplayOut.of(r, show) for r in await service.show_replays(db, show, user)]


@router.get(
    "/shows/{show_id}/replays/options",
    response_model=ReplayOptionsOut,
    summary="What the host may publish (host only)",
    responses=_REFUSALS,
)
async def replay_options(
    show_id: PathId, user: CurrentUser, db: Db, replays: ReplaysDep
) -> ReplayOptionsOut:
    show = await shows.get_show(db, show_id)
    service.require_host(show, user)
    return options_out(await replays.options(db, show))


def options_out(options: service.PublishOptions) -> ReplayOptionsOut:
    recorded = options.recorded_s > 0
    return ReplayOptionsOut(
        recorded_s=round(options.recorded_s, 3),
        talk_allowed=recorded,
        full_allowed=recorded and not options.blocked_by,
        full_blocked_by=[
            BlockingTrackOut(id=t.id, title=t.title, artists=list(t.artists))
            for t in options.blocked_by
        ],
    )


@router.post(
    "/shows/{show_id}/replays",
    status_code=202,
    response_model=ReplayOut,
    summary="Publish a replay of an ended show (host only)",
    description="Starts encoding in the background: the replay is `processing`, then `ready` "
    "(or `failed`). 409 when the show has not ended, has no recording, already has that "
    "replay, or (full) a song's licence forbids on-demand use; that answer lists the songs.",
    responses={**_REFUSALS, 409: {"model": Error, "description": "Not possible now."}},
)
async def publish(
    show_id: PathId, body: PublishIn, user: CurrentUser, db: Db, replays: ReplaysDep
) -> ReplayOut:
    show = await shows.get_show(db, show_id)
    replay = await replays.publish(db, show, user, body.kind)
    return ReplayOut.of(replay, show)


@router.get(
    "/replays/{replay_id}",
    response_model=ReplayOut,
    summary="One replay",
    responses={404: _REFUSALS[404]},
)
async def get_replay(replay_id: PathId, user: MaybeUser, db: Db) -> ReplayOut:
    replay, show = await service.get_replay(db, replay_id, user)
    return ReplayOut.of(replay, show)


@router.delete(
    "/replays/{replay_id}",
    status_code=204,
    response_class=Response,
    summary="Unpublish a replay (host, or a moderator taking it down)",
    description="The replay leaves the show page and the podcast feed; the recording stays, so "
    "the host may publish again. A moderator's takedown goes in the audit log.",
    responses=_REFUSALS,
)
async def unpublish(replay_id: PathId, user: CurrentUser, db: Db, replays: ReplaysDep) -> Response:
    replay, show = await service.get_replay(db, replay_id, user)
    if not service.may_manage(show, user):
        raise forbidden("only the show's host can unpublish its replays")
    await replays.unpublish(db, replay, show, user)
    return Response(status_code=204)


# --- what podcast apps fetch: no cookie, plain URLs


async def _ready(db: Db, replay_id: int) -> tuple[Replay, Show]:
    replay, show = await service.get_replay(db, replay_id, None)
    if not replay.audio_path or not Path(replay.audio_path).is_file():
        raise not_found("replay")
    return replay, show


# Podcast apps and feed validators ask HEAD before they download, and web players fetch the
# chapters (and the audio) from other sites: both are public once the replay is published.
_PUBLIC = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}


@files.api_route("/replays/{replay_id:int}.mp3", methods=["GET", "HEAD"], name="replay_audio")
async def replay_audio(replay_id: int, db: Db) -> FileResponse:
    replay, show = await _ready(db, replay_id)
    assert replay.audio_path is not None
    return FileResponse(
        replay.audio_path,
        media_type="audio/mpeg",
        filename=f"{episode_title(replay, show)}.mp3",
        content_disposition_type="inline",
        headers=_PUBLIC,
    )


@files.api_route(
    "/replays/{replay_id:int}/chapters.json", methods=["GET", "HEAD"], name="replay_chapters"
)
async def replay_chapters(replay_id: int, db: Db) -> JSONResponse:
    replay, _ = await _ready(db, replay_id)
    return JSONResponse(
        {"version": "1.2.0", "chapters": service.chapters_of(replay)},
        media_type=CHAPTERS_TYPE,
        headers=_PUBLIC,
    )


@files.api_route("/hosts/{host_id:int}/podcast.jpg", methods=["GET", "HEAD"], name="podcast_art")
async def podcast_art(host_id: int, db: Db) -> Response:
    host = await host_of(db, host_id)
    jpeg = await asyncio.to_thread(podcast_artwork, host.id, host.display_name)
    return Response(jpeg, media_type="image/jpeg", headers=_PUBLIC)


@files.api_route("/hosts/{host_id:int}/podcast.xml", methods=["GET", "HEAD"], name="podcast_feed")
async def podcast_feed(host_id: int, request: Request, db: Db) -> Response:
    host = await host_of(db, host_id)
    episodes = await service.host_replays(db, host.id)
    xml = podcast_xml(host, episodes, str(request.base_url))
    return Response(
        xml,
        media_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
