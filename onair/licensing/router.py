"""Licensing over HTTP: checks the console asks before queueing, and a listener's territory."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.catalog.models import Track
from onair.context import Ctx, Db
from onair.errors import ApiError
from onair.licensing.geoblock import territory_header
from onair.licensing.licences import Problem
from onair.licensing.service import Licensing, check_candidates
from onair.licensing.territories import listener_territory, territory_code, territory_name
from onair.settings import Settings
from onair.shows import service as shows
from onair.stage import crew
from onair.types import MAX_ID, PathId

router = APIRouter(prefix="/api/v1", tags=["licensing"])

MAX_CHECKS = 100


class ProblemOut(BaseModel):
    code: str = Field(
        description="licence_territory, licence_not_started, licence_ended, licence_lapses, "
        "unlicensed, explicit, rule_album_total, rule_album_in_a_row, rule_artist_total, "
        "rule_artist_in_a_row"
    )
    message: str
    blocking: bool = Field(description="True: the queue refuses the song; False: a warning.")

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(code=problem.code, message=problem.message, blocking=problem.blocking)


class TrackCheckOut(BaseModel):
    track_id: int
    plays_at: datetime = Field(description="When it would be heard if added last now.")
    problems: list[ProblemOut]


class QueueChecksOut(BaseModel):
    rules: str = Field(description="The programming rules in force: dmca, strict or none.")
    mode: str = Field(description="warn or block.")
    territories: list[str]
    checks: list[TrackCheckOut]


@router.get(
    "/shows/{show_id}/queue/checks",
    response_model=QueueChecksOut,
    summary="Would these songs be refused or break a rule if queued now? (the crew)",
    description="Each track is judged as if added at the end of the queue: its licence (the "
    "show's territories, its window now and when it would play), explicit lyrics in a clean "
    "show, and the programming rules at the moment it would be heard. Unknown ids are left out.",
)
async def queue_checks(
    show_id: PathId,
    user: CurrentUser,
    ctx: Ctx,
    db: Db,
    track_id: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]],
        Query(max_length=MAX_CHECKS, description="Repeat for each track."),
    ],
) -> QueueChecksOut:
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    licensing = Licensing.of(ctx.settings, ctx.clock)
    ids = list(dict.fromkeys(track_id))
    tracks = list((await db.scalars(select(Track).where(Track.id.in_(ids)))).unique())
    found = await check_candidates(db, licensing, show, tracks)
    return QueueChecksOut(
        rules=ctx.settings.programming_rules,
        mode=ctx.settings.programming_rules_mode,
        territories=list(licensing.show_territories(show)),
        checks=[
            TrackCheckOut(
                track_id=i,
                plays_at=found[i].at,
                problems=[ProblemOut.of(p) for p in found[i].problems],
            )
            for i in ids
            if i in found
        ],
    )


class TerritoryOut(BaseModel):
    territory: str = Field(description="ISO 3166-1 alpha-2 code.")
    name: str
    source: str = Field(description="header (the CDN's), account or default.")
    account_territory: str | None = Field(description="What the signed-in user set, if any.")
    allowed: bool = Field(description="Whether the service's streams play here.")
    territories: list[str] = Field(description="Where the service runs.")
    territory_names: list[str] = Field(description="Their names, in the same order.")


class TerritorySet(BaseModel):
    territory: str | None = Field(
        max_length=2, examples=["CA"], description="ISO 3166-1 alpha-2; null forgets it."
    )


def territory_view(request: Request, settings: Settings, account: str | None) -> TerritoryOut:
    """Where the request comes from, as the streams judge it (the show page asks too)."""
    where = listener_territory(
        header=territory_header(request, settings),
        account=account,
        territories=settings.territory_list,
    )
    return TerritoryOut(
        territory=where.code,
        name=territory_name(where.code),
        source=where.source,
        account_territory=account,
        allowed=where.allowed(settings.territory_list),
        territories=list(settings.territory_list),
        territory_names=[territory_name(t) for t in settings.territory_list],
    )


@router.get(
    "/territory",
    response_model=TerritoryOut,
    summary="Where OnAir thinks you are, and whether its streams play there",
)
async def my_territory(request: Request, user: MaybeUser, ctx: Ctx) -> TerritoryOut:
    return territory_view(request, ctx.settings, user.territory if user else None)


@router.put(
    "/territory",
    response_model=TerritoryOut,
    summary="Set your account's territory (signed in)",
    description="Used when the operator's CDN header does not say where you are.",
)
async def set_territory(
    body: TerritorySet, request: Request, user: CurrentUser, ctx: Ctx, db: Db
) -> TerritoryOut:
    code = None
    if body.territory is not None and body.territory.strip():
        code = territory_code(body.territory)
        if code is None:
            raise ApiError(
                422, "invalid", f"territory: {body.territory!r} is not an ISO 3166-1 country code"
            )
    user.territory = code
    await db.commit()
    ctx.account_territories.forget(user.id)  # the next stream request reads it afresh
    return territory_view(request, ctx.settings, code)
