"""The notifications page: what happened, the hosts followed, and the private calendar link.

It only reads; marking read, unfollowing and a new calendar link go through the JSON API from
notifications.js."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from onair.context import Db
from onair.shows.follows import service
from onair.web.rendering import login_url, render
from onair.web.router import Viewer

router = APIRouter(include_in_schema=False)


@router.get("/notifications")
async def notifications_page(request: Request, viewer: Viewer, db: Db) -> Response:
    if viewer is None:
        return RedirectResponse(login_url(request), status_code=303)
    token = await service.calendar_token(db, viewer.id)
    context = {
        "notifications": await service.notifications(db, viewer.id),
        "unread": await service.unread_count(db, viewer.id),
        "followed": await service.followed(db, viewer),
        "calendar_url": str(request.url_for("calendar_feed", token=token)) if token else "",
    }
    return render(request, "notifications.html", context, viewer=viewer)
