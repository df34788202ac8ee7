"""Shows as iCalendar events (RFC 5545), written with the `icalendar` package, which escapes
text (commas, semicolons, new lines) and folds long lines as the format requires."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Calendar, Event

from onair.shows.models import Show, ShowStatus

DEFAULT_LENGTH = timedelta(hours=1)
"""A show has a start but no planned end: calendars get this long an event."""
STILL_ON = timedelta(minutes=15)
"""A live show past its default length is shown ending this far from now."""
PRODID = "-//OnAir//Shows//EN"
REFRESH = timedelta(hours=1)


def show_event(show: Show, base_url: str, now: datetime) -> Event | None:
    """The show as one event, or None when it has no time to put in a calendar."""
    start = show.started_at if show.status is ShowStatus.live else show.scheduled_start
    if start is None or show.status is ShowStatus.ended:
        return None
    end = start + DEFAULT_LENGTH
    if show.status is ShowStatus.live and end < now + STILL_ON:
        end = now + STILL_ON
    url = f"{base_url.rstrip('/')}/shows/{show.id}"
    host = show.host.display_name
    lines = [show.description] if show.description else []
    lines += [f"Hosted by {host} (@{show.host.username}) on OnAir.", f"Listen: {url}"]
    event = Event()
    event.add("uid", f"show-{show.id}@{urlsplit(base_url).hostname or 'onair'}")
    event.add("dtstamp", show.updated_at)
    event.add("last-modified", show.updated_at)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", f"{show.title} — {host}")
    event.add("description", "\n\n".join(lines))
    event.add("url", url)
    if show.genre is not None:
        event.add("categories", [show.genre.name])
    event.add("status", "CONFIRMED")
    return event


def calendar(shows: Iterable[Show], base_url: str, now: datetime, *, name: str) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    # How often a subscribed calendar should look again (Apple's and the draft standard's).
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH)
    for show in shows:
        event = show_event(show, base_url, now)
        if event is not None:
            cal.add_component(event)
    body: bytes = cal.to_ical()
    return body
