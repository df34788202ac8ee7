"""The stage's API: call in, hang up, screen, air, mute, drop; invite and accept co-hosts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.accounts.models import User
from onair.context import Ctx, Db
from onair.errors import ApiError, forbidden
from onair.live.station import LiveShow
from onair.rooms import sanctions
from onair.shows import service as shows
from onair.stage import crew
from onair.stage.service import MAX_TOPIC, Stage, voice_id_of
from onair.types import PathId

router = APIRouter(prefix="/api/v1/shows", tags=["stage"])


async def authorize_voice(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> str:
    """Who may open a voice line into a show's studio: the host and co-hosts, and a caller
    the crew is screening or has put on air. Returns the voice id the studio knows them by."""
    show = await shows.get_show(db, show_id)
    station = ctx.stations.get(show_id)
    if station is not None:
        allowed = station.stage.may_open_line(user)
    else:  # not live: the line endpoint answers 409 for the crew, 403 for anyone else
        allowed = show.host_id == user.id or user.id in await crew.accepted_ids(db, show_id)
    if not allowed:
        raise forbidden("only the crew, and callers the host has taken, can send audio")
    return voice_id_of(user.id)


async def live_stage(show_id: PathId, ctx: Ctx, db: Db) -> Stage:
    station: LiveShow | None = ctx.stations.get(show_id)
    if station is not None:  # no database work on the way to a mute
        return station.stage
    await shows.get_show(db, show_id)  # 404 for an unknown show, before "not live"
    raise ApiError(409, "not_live", f"show {show_id} is not live")


LiveStage = Annotated[Stage, Depends(live_stage)]


class CallIn(BaseModel):
    topic: str = Field(default="", max_length=MAX_TOPIC, description="What you want to talk about.")


class SelfMute(BaseModel):
    muted: bool


class CallerControls(BaseModel):
    muted: bool | None = Field(default=None, description="Mute the caller in the program.")
    level_db: float | None = Field(default=None, ge=-30, le=12, description="Caller's level.")


def _view(stage: Stage, user: User | None) -> dict[str, Any]:
    view = stage.for_crew() if user is not None and stage.is_crew(user) else stage.public()
    return {**view, "me": stage.me(user) if user is not None else None}


@router.get("/{show_id}/stage", summary="The stage: who is on air, the call-in queue for the crew")
async def get_stage(stage: LiveStage, user: MaybeUser) -> dict[str, Any]:
    return _view(stage, user)


@router.post("/{show_id}/stage/call", status_code=201, summary="Call in (raise your hand)")
async def call_in(
    body: CallIn, stage: LiveStage, user: CurrentUser, ctx: Ctx, db: Db
) -> dict[str, Any]:
    show = await shows.get_show(db, stage.show_id)
    await sanctions.require_in_room(db, show, user, ctx.clock.now())
    await ctx.limiters.hand_raise.acheck(f"user:{user.id}")
    await stage.call_in(user, body.topic)
    return _view(stage, user)


@router.delete("/{show_id}/stage/call", summary="Hang up (leave the call-in queue or the air)")
async def hang_up(stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.hang_up(user)
    return _view(stage, user)


@router.patch("/{show_id}/stage/call", summary="Mute or unmute yourself on the line")
async def mute_self(body: SelfMute, stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.mute_self(user, body.muted)
    return _view(stage, user)


@router.post("/{show_id}/stage/callers/{user_id}/screen", summary="Screen a caller (crew)")
async def screen(user_id: PathId, stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.screen(user, user_id)
    return _view(stage, user)


@router.post("/{show_id}/stage/callers/{user_id}/air", summary="Put a screened caller on air")
async def air(user_id: PathId, stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.air(user, user_id)
    return _view(stage, user)


@router.post("/{show_id}/stage/callers/{user_id}/queue", summary="Send a caller back to the queue")
async def back_to_queue(user_id: PathId, stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.back_to_queue(user, user_id)
    return _view(stage, user)


@router.post("/{show_id}/stage/callers/{user_id}/drop", summary="Drop a caller (crew)")
async def drop(user_id: PathId, stage: LiveStage, user: CurrentUser) -> dict[str, Any]:
    await stage.drop(user, user_id)
    return _view(stage, user)


@router.patch("/{show_id}/stage/callers/{user_id}", summary="Mute a caller or set their level")
async def caller_controls(
    user_id: PathId, body: CallerControls, stage: LiveStage, user: CurrentUser
) -> dict[str, Any]:
    await stage.set_controls(user, user_id, muted=body.muted, level_db=body.level_db)
    return _view(stage, user)


# --- co-hosts


class CoHostInvite(BaseModel):
    username: str = Field(min_length=1, max_length=32)


def _cohosts_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "user_id": c.user_id,
            "username": c.user.username,
            "name": c.user.display_name,
            "accepted": c.accepted_at is not None,
        }
        for c in rows
    ]


async def _after_crew_change(ctx: Ctx, show_id: int) -> None:
    station = ctx.stations.get(show_id)
    if station is not None:
        await station.stage.reload_cohosts()


@router.get("/{show_id}/cohosts", summary="The show's co-hosts (and, for the host, invitations)")
async def list_cohosts(show_id: PathId, user: MaybeUser, db: Db) -> list[dict[str, Any]]:
    show = await shows.get_show(db, show_id)
    rows = await crew.cohosts(db, show_id)
    sees_invites = user is not None and (user.id == show.host_id or user.is_moderator)
    return _cohosts_json(
        [
            c
            for c in rows
            if sees_invites or c.accepted_at is not None or c.user_id == (user and user.id)
        ]
    )


@router.post("/{show_id}/cohosts", status_code=201, summary="Invite a co-host (host only)")
async def invite_cohost(
    show_id: PathId, body: CoHostInvite, user: CurrentUser, ctx: Ctx, db: Db
) -> list[dict[str, Any]]:
    show = await shows.get_show(db, show_id)
    shows.require_host(show, user)
    await crew.invite(db, ctx.clock, show, body.username, ctx.settings.max_cohosts)
    await db.commit()
    ctx.rooms.publish(show_id, "stage.cohosts", {"show_id": show_id})
    return _cohosts_json(await crew.cohosts(db, show_id))


@router.post("/{show_id}/cohosts/accept", summary="Accept an invitation to co-host")
async def accept_cohost(show_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> dict[str, Any]:
    show = await shows.get_show(db, show_id)
    await crew.accept(db, ctx.clock, show, user)
    await db.commit()
    ctx.rooms.set_crew(show_id, user.id, True)  # their open chat now shows the crew's tools
    await _after_crew_change(ctx, show_id)
    return {"show_id": show_id, "user_id": user.id, "accepted": True}


@router.delete("/{show_id}/cohosts/{user_id}", summary="Remove a co-host, or step down")
async def remove_cohost(
    show_id: PathId, user_id: PathId, user: CurrentUser, ctx: Ctx, db: Db
) -> list[dict[str, Any]]:
    show = await shows.get_show(db, show_id)
    if user.id != user_id:
        shows.require_host(show, user)
    await crew.remove(db, show, user_id)
    await db.commit()
    ctx.rooms.set_crew(show_id, user_id, user_id == show.host_id)
    await _after_crew_change(ctx, show_id)
    station = ctx.stations.get(show_id)
    if station is not None:
        await station.end_voice(show_id, voice_id_of(user_id))
    return _cohosts_json(await crew.cohosts(db, show_id))
