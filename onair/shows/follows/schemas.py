"""What the follows API and the notification stream carry."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from onair.accounts.models import User
from onair.shows.follows.models import NotificationKind
from onair.shows.models import Show, ShowStatus


class Person(BaseModel):
    """A user as anyone may see them (accounts' Person; the context imports this module,
    so it cannot import the accounts router)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str


class FollowState(BaseModel):
    host: Person
    following: bool = Field(description="Whether you follow them (false when signed out).")
    followers: int = Field(description="How many people follow them.")


class Followed(BaseModel):
    host: Person
    since: datetime


class NotifiedShow(BaseModel):
    id: int
    title: str
    status: ShowStatus
    scheduled_start: datetime | None
    url: str = Field(description="The show's page.")


class NotificationOut(BaseModel):
    id: int
    kind: NotificationKind = Field(description="live: the host went live; scheduled: a start.")
    show: NotifiedShow
    host: Person
    created_at: datetime
    read: bool = False

    @classmethod
    def about(
        cls,
        note_id: int,
        kind: NotificationKind,
        show: Show,
        created_at: datetime,
        *,
        host: User | None = None,
        read: bool = False,
    ) -> NotificationOut:
        return cls(
            id=note_id,
            kind=kind,
            show=NotifiedShow(
                id=show.id,
                title=show.title,
                status=show.status,
                scheduled_start=show.scheduled_start,
                url=f"/shows/{show.id}",
            ),
            host=Person.model_validate(host or show.host),
            created_at=created_at,
            read=read,
        )


class NotificationList(BaseModel):
    unread: int
    notifications: list[NotificationOut]


class MarkRead(BaseModel):
    ids: list[int] | None = Field(
        default=None, max_length=500, description="These notifications; omitted or null: all."
    )


class Unread(BaseModel):
    unread: int


class CalendarLink(BaseModel):
    url: str | None = Field(
        description="Your private calendar feed (subscribe to it in a calendar app), or null "
        "until you make one. Anyone with the link sees the shows coming up of the hosts you "
        "follow: make a new one if it leaks."
    )
