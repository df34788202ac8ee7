"""The song requests API: listeners request, list and withdraw; the crew sees them grouped by
song and queues or dismisses a song's requests in one go.

The public never sees a request that is not theirs: the crew's board and its room event are for
the crew only, and each requester hears about their own requests alone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.deps import CurrentUser
from onair.accounts.router import PublicUser
from onair.catalog.schemas import TrackOut
from onair.context import Ctx, Db, OnAir
from onair.licensing.service import Licensing
from onair.requests import service
from onair.requests.models import MAX_DEDICATION, RequestState, SongRequest
from onair.rooms import sanctions
from onair.shows import service as shows
from onair.shows.models import Show
from onair.shows.router import QueueOut, queue_out
from onair.stage import crew
from onair.types import BodyId, PathId

log = logging.getLogger("onair.requests")

router = APIRouter(prefix="/api/v1/shows", tags=["song requests"])


class RequestCreate(BaseModel):
    track_id: BodyId
    dedication: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=MAX_DEDICATION)
    ] = Field(
        default="",
        description="Who the song is for, read out by the host if they like.",
        examples=["For Sam, happy birthday!"],
    )


class SongRequestOut(BaseModel):
    id: int
    show_id: int
    track: TrackOut
    dedication: str
    state: RequestState
    requested_at: datetime
    handled_at: datetime | None

    @classmethod
    def of(cls, request: SongRequest) -> SongRequestOut:
        return cls(
            id=request.id,
            show_id=request.show_id,
            track=TrackOut.of(request.track),
            dedication=request.dedication,
            state=request.state,
            requested_at=request.created_at,
            handled_at=request.handled_at,
        )


class RequesterOut(BaseModel):
    request_id: int
    user: PublicUser
    dedication: str
    requested_at: datetime


class RequestGroupOut(BaseModel):
    track: TrackOut
    count: int = Field(description="How many listeners asked for the song.")
    first_requested_at: datetime
    last_requested_at: datetime
    in_queue: bool = Field(description="The song is already on the queue (or playing).")
    requesters: list[RequesterOut]

    @classmethod
    def of(cls, group: service.RequestGroup) -> RequestGroupOut:
        return cls(
            track=TrackOut.of(group.track),
            count=group.count,
            first_requested_at=group.first_at,
            last_requested_at=group.last_at,
            in_queue=group.in_queue,
            requesters=[
                RequesterOut(
                    request_id=r.id,
                    user=PublicUser.model_validate(r.user),
                    dedication=r.dedication,
                    requested_at=r.created_at,
                )
                for r in group.requests
            ],
        )


class RequestBoardOut(BaseModel):
    open: int = Field(description="Open requests in all, across every song.")
    groups: list[RequestGroupOut]


class RequestsHandledOut(BaseModel):
    track_id: int
    state: RequestState
    handled: int = Field(description="How many requests this answered.")
    board: RequestBoardOut
    queue: QueueOut | None = Field(description="The queue after the song joined it (queued).")


async def _board(db: AsyncSession, show: Show) -> RequestBoardOut:
    groups = await service.board(db, show)
    return RequestBoardOut(
        open=await service.open_count(db, show), groups=[RequestGroupOut.of(g) for g in groups]
    )


def _tell_crew(ctx: OnAir, show_id: int, open_requests: int) -> None:
    ctx.rooms.publish(show_id, "requests", {"open": open_requests}, crew_only=True)


def _tell_requesters(
    ctx: OnAir, show_id: int, track_id: int, state: RequestState, handled: list[service.Handled]
) -> None:
    # Only to requesters in the room now: a big request would otherwise fill the room's
    # catch-up history with events for people who are not there (the page asks on load).
    present = ctx.rooms.users_here(show_id)  # None with several nodes: tell them all
    for h in handled:
        if present is None or h.user_id in present:
            ctx.rooms.publish(
                show_id,
                "request.update",
                {"request_id": h.request_id, "track_id": track_id, "state": state.value},
                to_user=h.user_id,
            )


@router.post(
    "/{show_id}/requests",
    status_code=201,
    response_model=SongRequestOut,
    summary="Request a song (signed-in listeners)",
    description="The song must be one the host could queue (playable, and the show not ended). "
    "A listener has one open request per song: asking again for the same song changes the "
    "dedication and answers 200 instead of 201. Rate limited per listener.",
    responses={200: {"description": "The open request for this song, dedication updated."}},
)
async def request_song(
    show_id: PathId, body: RequestCreate, response: Response, user: CurrentUser, ctx: Ctx, db: Db
) -> SongRequestOut:
    show = await shows.get_show(db, show_id)
    await sanctions.require_in_room(db, show, user, ctx.clock.now())
    track = await service.requestable(
        db, show, user, body.track_id, Licensing.of(ctx.settings, ctx.clock)
    )
    await ctx.limiters.song_request.acheck(f"user:{user.id}")
    request, created = await service.request_song(db, ctx.clock, show, user, track, body.dedication)
    await db.commit()
    if not created:
        response.status_code = 200
    log.info(
        "song request %s show=%s user=%s track=%s",
        "filed" if created else "updated",
        show_id,
        user.id,
        track.id,
    )
    _tell_crew(ctx, show_id, await service.open_count(db, show))
    return SongRequestOut.of(request)


@router.get(
    "/{show_id}/requests/mine",
    response_model=list[SongRequestOut],
    summary="Your requests for a show, newest first",
)
async def my_requests(show_id: PathId, user: CurrentUser, db: Db) -> list[SongRequestOut]:
    show = await shows.get_show(db, show_id)
    return [SongRequestOut.of(r) for r in await service.mine(db, show, user)]


@router.delete(
    "/{show_id}/requests/{request_id}",
    status_code=204,
    summary="Withdraw your request (while the host has not answered it)",
)
async def withdraw_request(
    show_id: PathId, request_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> Response:
    show = await shows.get_show(db, show_id)
    await service.withdraw(db, show, user, request_id)
    await db.commit()
    log.info("song request withdrawn show=%s user=%s request=%s", show_id, user.id, request_id)
    _tell_crew(ctx, show_id, await service.open_count(db, show))
    return Response(status_code=204)


@router.get(
    "/{show_id}/requests",
    response_model=RequestBoardOut,
    summary="Open requests grouped by song (crew)",
    description="Most requested first, then the one waiting longest; each group names its "
    "listeners (once each, with their latest dedication). Only the host, co-hosts and "
    "moderators see it: requests say what may play next.",
)
async def request_board(show_id: PathId, user: CurrentUser, db: Db) -> RequestBoardOut:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    return await _board(db, show)


@router.post(
    "/{show_id}/requests/tracks/{track_id}/queue",
    response_model=RequestsHandledOut,
    summary="Queue a requested song (crew)",
    description="Adds the song at the end of the queue, once, and marks every open request "
    "for it queued. Refused as the queue's own add would be (404, 409).",
)
async def queue_requested(
    show_id: PathId, track_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> RequestsHandledOut:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    handled = await service.queue_requested(
        db, ctx.clock, show, user, track_id, Licensing.of(ctx.settings, ctx.clock)
    )
    await db.commit()
    await ctx.stations.queue_changed(show.id)
    log.info(
        "song requests queued show=%s track=%s by=%s requests=%s",
        show_id,
        track_id,
        user.id,
        len(handled),
    )
    return await _after_handling(ctx, db, show, track_id, RequestState.queued, handled)


@router.post(
    "/{show_id}/requests/tracks/{track_id}/dismiss",
    response_model=RequestsHandledOut,
    summary="Dismiss a song's requests (crew)",
)
async def dismiss_requested(
    show_id: PathId, track_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> RequestsHandledOut:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    handled = await service.dismiss(db, ctx.clock, show, user, track_id)
    await db.commit()
    log.info(
        "song requests dismissed show=%s track=%s by=%s requests=%s",
        show_id,
        track_id,
        user.id,
        len(handled),
    )
    return await _after_handling(ctx, db, show, track_id, RequestState.dismissed, handled)


async def _after_handling(
    ctx: OnAir,
    db: AsyncSession,
    show: Show,
    track_id: int,
    state: RequestState,
    handled: list[service.Handled],
) -> RequestsHandledOut:
    board = await _board(db, show)
    _tell_crew(ctx, show.id, board.open)
    _tell_requesters(ctx, show.id, track_id, state, handled)
    queue = None
    if state is RequestState.queued:
        queue = queue_out(await shows.queue_items(db, show), crew_view=True)
    return RequestsHandledOut(
        track_id=track_id, state=state, handled=len(handled), board=board, queue=queue
    )
