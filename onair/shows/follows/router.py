"""Follow hosts, read notifications (a list, and a live stream for the bell), calendar feeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from onair.accounts.deps import CurrentUser, MaybeUser
from onair.accounts.models import User
from onair.context import Ctx, Db, OnAir
from onair.errors import ApiError, forbidden
from onair.shows import service as shows
from onair.shows.follows import calendar, service
from onair.shows.follows.notifications import UserEvent
from onair.shows.follows.schemas import (
    CalendarLink,
    Followed,
    FollowState,
    MarkRead,
    NotificationList,
    Person,
    Unread,
)
from onair.shows.follows.stream import EventStream, server_cycle
from onair.shows.models import ShowStatus
from onair.types import MAX_ID, PathId

router = APIRouter(prefix="/api/v1", tags=["follows"])
feeds = APIRouter(include_in_schema=False)

ICS = "text/calendar; charset=utf-8"


async def _state(db: Db, viewer: User | None, host: User) -> FollowState:
    view = await service.follow_view(db, viewer, host.id)
    return FollowState(
        host=Person.model_validate(host), following=view.following, followers=view.followers
    )


async def _check_rate(ctx: OnAir, user: User) -> None:
    await ctx.limiters.follow.acheck(f"user:{user.id}")


@router.get(
    "/users/{user_id}/follow",
    response_model=FollowState,
    summary="A host's follower count, and whether you follow them",
)
async def follow_state(user_id: PathId, viewer: MaybeUser, db: Db) -> FollowState:
    return await _state(db, viewer, await service.host_of(db, user_id))


@router.put(
    "/users/{user_id}/follow",
    response_model=FollowState,
    summary="Follow a host",
    description="Idempotent. You are notified when they go live or schedule a show, and "
    "their shows coming up are in your calendar feed. Rate limited per user.",
)
async def follow(user_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> FollowState:
    host = await service.host_of(db, user_id)
    if host.id == user.id:
        raise ApiError(422, "invalid", "you cannot follow yourself")
    await _check_rate(ctx, user)
    await service.follow(db, ctx.clock, user, host)
    await db.commit()
    return await _state(db, user, host)


@router.delete(
    "/users/{user_id}/follow",
    response_model=FollowState,
    summary="Stop following a host",
    description="Idempotent. Rate limited per user, with following.",
)
async def unfollow(user_id: PathId, user: CurrentUser, ctx: Ctx, db: Db) -> FollowState:
    host = await service.host_of(db, user_id)
    await _check_rate(ctx, user)
    await service.unfollow(db, user, host)
    await db.commit()
    return await _state(db, user, host)


@router.get(
    "/users/{user_id}/followers",
    response_model=list[Person],
    summary="Who follows a host (that host and moderators only)",
)
async def followers(
    user_id: PathId,
    user: CurrentUser,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[Person]:
    host = await service.host_of(db, user_id)
    if host.id != user.id and not user.is_moderator:
        raise forbidden("only they can see who follows them")
    found = await service.followers(db, host, limit=limit, offset=offset)
    return [Person.model_validate(u) for u in found]


@router.get("/follows", response_model=list[Followed], summary="The hosts you follow")
async def following(user: CurrentUser, db: Db) -> list[Followed]:
    return [
        Followed(host=Person.model_validate(host), since=since)
        for host, since in await service.followed(db, user)
    ]


@router.get(
    "/notifications",
    response_model=NotificationList,
    summary="Your notifications, latest first, and how many are unread",
)
async def list_notifications(
    user: CurrentUser,
    db: Db,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Older than this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = service.NOTIFICATIONS_PAGE,
) -> NotificationList:
    return NotificationList(
        unread=await service.unread_count(db, user.id),
        notifications=await service.notifications(db, user.id, before=before, limit=limit),
    )


@router.post(
    "/notifications/read",
    response_model=Unread,
    summary="Mark notifications read (the ones named, or all)",
)
async def mark_read(body: MarkRead, user: CurrentUser, ctx: Ctx, db: Db) -> Unread:
    await service.mark_read(db, ctx.clock, user.id, body.ids)
    await db.commit()
    unread = await service.unread_count(db, user.id)
    # The user's other open pages update their bell too.
    ctx.notifications.publish(user.id, "unread", {"unread": unread})
    return Unread(unread=unread)


@router.get(
    "/notifications/stream",
    summary="Your notifications as they happen (server-sent events)",
    description="text/event-stream: first an `unread` event with the count, then (after a "
    "reconnect with Last-Event-ID) what was missed, then a `notification` event for each new "
    "one and an `unread` event when the count changes elsewhere; a comment every few seconds "
    "keeps it open. A `closed` event ends it (the account was suspended, the server stops).",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    db: Db,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventStream:
    # Subscribed before reading, so nothing published meanwhile is lost (the page drops
    # the duplicates by id).
    sub = ctx.notifications.subscribe(user.id, server_cycle(request.scope))
    try:
        first = [UserEvent("unread", {"unread": await service.unread_count(db, user.id)})]
        if last_event_id and last_event_id.isdigit() and int(last_event_id) <= MAX_ID:
            missed = await service.notifications(
                db, user.id, after=int(last_event_id), limit=service.CATCH_UP
            )
            first += [
                UserEvent("notification", n.model_dump(mode="json"), n.id) for n in reversed(missed)
            ]
    except BaseException:
        ctx.notifications.unsubscribe(sub)
        raise
    finally:
        await db.close()  # a stream holds no database connection while it waits
    return EventStream(
        ctx.notifications, sub, first, heartbeat_s=ctx.settings.notification_heartbeat_s
    )


def _feed_url(request: Request, token: str | None) -> str | None:
    return str(request.url_for("calendar_feed", token=token)) if token else None


@router.get("/calendar", response_model=CalendarLink, summary="Your private calendar link")
async def calendar_link(request: Request, user: CurrentUser, db: Db) -> CalendarLink:
    return CalendarLink(url=_feed_url(request, await service.calendar_token(db, user.id)))


@router.post(
    "/calendar/token",
    response_model=CalendarLink,
    summary="Make a new private calendar link",
    description="The old link, if any, stops working at once.",
)
async def new_calendar_link(request: Request, user: CurrentUser, ctx: Ctx, db: Db) -> CalendarLink:
    token = await service.new_calendar_token(db, ctx.clock, user)
    await db.commit()
    return CalendarLink(url=_feed_url(request, token))


def _ics(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type=ICS,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
        },
    )


@feeds.get("/calendar/{token}.ics", name="calendar_feed")
async def calendar_feed(request: Request, token: str, ctx: Ctx, db: Db) -> Response:
    """No cookie: calendar apps subscribe with the secret link alone."""
    if len(token) > 64:
        raise ApiError(404, "not_found", "calendar not found")
    now = ctx.clock.now()
    owner = await service.feed_owner(db, token, now)
    found = await service.upcoming_followed(db, owner, now)
    body = calendar.calendar(found, str(request.base_url), now, name="OnAir: the hosts you follow")
    return _ics(body, "onair-following.ics")


@feeds.get("/shows/{show_id:int}.ics")
async def show_ics(request: Request, show_id: int, ctx: Ctx, db: Db) -> Response:
    """ "Add to calendar": the one show, for anyone who can see its page."""
    if not 1 <= show_id <= MAX_ID:
        raise ApiError(404, "not_found", "show not found")
    show = await shows.get_show(db, show_id)
    if show.status is ShowStatus.ended:
        raise ApiError(404, "show_ended", "this show has ended")
    now = ctx.clock.now()
    event = calendar.show_event(show, str(request.base_url), now)
    if event is None:
        raise ApiError(409, "no_start", "this show has no start time yet")
    body = calendar.calendar([show], str(request.base_url), now, name=show.title)
    return _ics(body, f"onair-show-{show.id}.ics")
