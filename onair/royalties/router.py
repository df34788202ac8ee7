"""The operator's royalty report and the host's show analytics: JSON API and the page."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.deps import CurrentUser
from onair.accounts.models import User
from onair.context import Ctx, Db
from onair.errors import ApiError, forbidden
from onair.moderation.router import Admin
from onair.royalties import analytics, report
from onair.royalties.plot import listeners_plot
from onair.shows import service as shows
from onair.types import PathId
from onair.web.rendering import login_url, render
from onair.web.router import Viewer

router = APIRouter(tags=["royalties"])
pages = APIRouter(include_in_schema=False)


# --- who may see a show's analytics


async def _analytics_of(db: AsyncSession, ctx: Ctx, show_id: int, user: User) -> Any:
    show = await shows.get_show(db, show_id)
    if not await analytics.may_see(db, show, user):
        raise forbidden("only the show's host and co-hosts see its analytics")
    return show, await analytics.show_analytics(db, show, ctx.clock.now())


# --- the royalty report


class ReportTotals(BaseModel):
    recordings: int
    plays: int
    performances: int
    aggregate_tuning_hours: float = Field(
        description="Listener-hours of every show within the period, talk included."
    )


class RoyaltyReport(BaseModel):
    first_day: date
    last_day: date
    totals: ReportTotals
    recordings: list[report.Recording]


@router.get(
    "/api/v1/admin/reports/royalties",
    summary="The report of use for a period (admins)",
    description=(
        "Per sound recording: featured artist, title, ISRC, album, label, actual total "
        "performances and plays, for plays that started between `from` and `to` (whole days "
        "in UTC, both included), with the period's aggregate tuning hours. `format=csv` and "
        "`format=soundexchange` (pipe-delimited) answer a file; the totals are then in the "
        "`X-Report-*` headers."
    ),
    response_model=RoyaltyReport,
    responses={
        200: {
            "content": {"text/csv": {}, "text/plain": {}},
            "description": "The report: JSON, CSV or the SoundExchange layout.",
        },
    },
)
async def royalty_report(
    ctx: Ctx,
    db: Db,
    _admin: Admin,
    first_day: Annotated[date, Query(alias="from", description="First day (YYYY-MM-DD, UTC).")],
    last_day: Annotated[date, Query(alias="to", description="Last day, included.")],
    fmt: Annotated[Literal["json", "csv", "soundexchange"], Query(alias="format")] = "json",
) -> Any:
    try:
        period = report.Period.of(first_day, last_day)
    except report.PeriodError as exc:
        raise ApiError(422, "invalid_period", str(exc)) from None
    settings = ctx.settings
    service, category = settings.royalties_service_name, settings.royalties_transmission_category
    if fmt == "json":
        rows = [r async for r in report.recordings(db, period)]
        ath = await report.aggregate_tuning_hours(db, period, ctx.clock.now())
        return RoyaltyReport(
            first_day=period.first_day,
            last_day=period.last_day,
            totals=ReportTotals(
                recordings=len(rows),
                plays=sum(r.plays for r in rows),
                performances=sum(r.performances for r in rows),
                aggregate_tuning_hours=round(ath, 3),
            ),
            recordings=rows,
        )
    out = io.StringIO()
    totals = await report.write_report(
        db, period, fmt, out, service=service, category=category, now=ctx.clock.now()
    )
    name = report.file_name(period, fmt, service, category)
    return Response(
        out.getvalue(),
        media_type="text/csv" if fmt == "csv" else "text/plain",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "x-report-recordings": str(totals.recordings),
            "x-report-plays": str(totals.plays),
            "x-report-performances": str(totals.performances),
            "x-report-aggregate-tuning-hours": f"{totals.aggregate_tuning_hours:.3f}",
        },
    )


# --- a show's analytics


class PointOut(BaseModel):
    at: datetime
    listeners: int
    by_transport: dict[str, int]


class TransportOut(BaseModel):
    kind: Literal["webrtc", "hls", "stream", "smart_speaker"]
    label: str
    peak: int
    listener_hours: float
    share: float = Field(description="Of all listening time, 0 to 1.")


class SongOut(BaseModel):
    play_id: int
    track_id: int
    title: str
    artists: list[str]
    started_at: datetime
    seconds_played: float
    performances: int = Field(description="Listeners who heard it: there at its start or joined.")
    average_listeners: float
    peak_listeners: int
    skipped: bool
    auto_dj: bool


class AnalyticsOut(BaseModel):
    show_id: int
    title: str
    status: str
    start: datetime | None
    end: datetime | None
    peak_listeners: int
    average_listeners: float
    listener_hours: float
    chat_messages: int
    chatters: int
    reactions: int
    transports: list[TransportOut]
    setlist: list[SongOut]
    samples: list[PointOut] = Field(
        description="Listeners from `at` until the next sample (a step function)."
    )


def _out(data: analytics.ShowAnalytics) -> AnalyticsOut:
    return AnalyticsOut(
        show_id=data.show_id,
        title=data.title,
        status=data.status,
        start=data.start,
        end=data.end,
        peak_listeners=data.peak_listeners,
        average_listeners=data.average_listeners,
        listener_hours=data.listener_hours,
        chat_messages=data.chat_messages,
        chatters=data.chatters,
        reactions=data.reactions,
        transports=[TransportOut(**t.__dict__) for t in data.transports],
        setlist=[SongOut(**s.__dict__) for s in data.setlist],
        samples=[
            PointOut(at=p.at, listeners=p.listeners, by_transport=p.by_kind) for p in data.points
        ],
    )


@router.get(
    "/api/v1/shows/{show_id}/analytics",
    summary="A show's audience: listeners over time, songs, chat, transports (host, co-hosts)",
    response_model=AnalyticsOut,
)
async def show_analytics(show_id: PathId, ctx: Ctx, db: Db, user: CurrentUser) -> AnalyticsOut:
    _, data = await _analytics_of(db, ctx, show_id, user)
    return _out(data)


@pages.get("/shows/{show_id}/analytics")
async def analytics_page(
    request: Request, show_id: PathId, ctx: Ctx, db: Db, user: Viewer
) -> Response:
    if user is None:
        return RedirectResponse(login_url(request), status_code=303)
    show, data = await _analytics_of(db, ctx, show_id, user)
    context = {"show": show, "stats": data, "plot": listeners_plot(data.points, data.end)}
    return render(request, "analytics.html", context, viewer=user)
