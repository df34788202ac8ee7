"""Calendars: each user's private feed of the shows coming up of the hosts they follow, and a
show's own "add to calendar" file, both read back with the `icalendar` package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from icalendar import Calendar, Event

from onair.clock import FakeClock
from tests.discovery.conftest import Person

# Commas, semicolons, backslashes, new lines and markup: iCalendar escapes the first four.
AWKWARD = 'Jazz, soul; and "more" \\ stuff\nSecond line <b>bold</b> — ünïcode'


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A calendar app: no cookie, only the link."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _at(clock: FakeClock, hours: float) -> datetime:
    return clock.now() + timedelta(hours=hours)


async def _show(host: httpx.AsyncClient, title: str, start: datetime | None, **extra: Any) -> int:
    body: dict[str, Any] = {"title": title, **extra}
    if start is not None:
        body["scheduled_start"] = start.isoformat()
    r = await host.post("/api/v1/shows", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def events_of(ics: bytes) -> dict[str, Event]:
    cal = Calendar.from_ical(ics)
    assert str(cal["VERSION"]) == "2.0" and "PRODID" in cal
    found = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert len(found) == len(cal.walk("VEVENT")), "two events with one summary"
    return found


async def _feed_url(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/v1/calendar/token")
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith("http://testserver/calendar/") and url.endswith(".ics")
    return str(url)


async def test_the_feed_lists_exactly_the_upcoming_shows_of_the_hosts_followed(
    app: FastAPI, clock: FakeClock, person: Person, anon: httpx.AsyncClient
) -> None:
    ada, ada_id = await person("ada_host")
    bob, bob_id = await person("bob_host")
    cy, _ = await person("cy_host")
    fan, _ = await person("fan")
    for host_id in (ada_id, bob_id):
        assert (await fan.put(f"/api/v1/users/{host_id}/follow")).status_code == 200

    # A show whose host never turned up: past its start by more than two hours, it is gone.
    await _show(ada, "No show", _at(clock, 1))
    clock.advance(4 * 3600)

    soon = _at(clock, 2).replace(microsecond=0)
    await _show(ada, "Ada Late", soon, description=AWKWARD, genre="Jazz")
    await _show(ada, "Ada undated", None)  # no time: nothing to put in a calendar
    cancelled = await _show(ada, "Ada cancelled", _at(clock, 5))
    assert (await ada.post(f"/api/v1/shows/{cancelled}/end")).status_code == 200
    ends = await _show(bob, "Bob Live", _at(clock, 1))
    await bob.post(f"/api/v1/shows/{ends}/live")
    await _show(cy, "Cy not followed", _at(clock, 3))
    next_week = await _show(bob, "Bob next week", _at(clock, 24 * 7))

    url = await _feed_url(fan)
    r = await anon.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "private" in r.headers["cache-control"]
    found = events_of(r.content)
    assert set(found) == {"Ada Late — ada_host", "Bob Live — bob_host", "Bob next week — bob_host"}

    late = found["Ada Late — ada_host"]
    assert late.decoded("DTSTART") == soon
    assert late.decoded("DTEND") == soon + timedelta(hours=1)  # no planned end: an hour
    description = str(late["DESCRIPTION"])
    assert description.startswith(AWKWARD + "\n\n")
    assert "Hosted by ada_host (@ada_host)" in description
    assert str(late["URL"]).startswith("http://testserver/shows/")
    assert str(late["UID"]).startswith("show-") and str(late["UID"]).endswith("@testserver")
    assert [str(c) for c in late["CATEGORIES"].cats] == ["Jazz"]
    # Escaped on the wire, as RFC 5545 says, and the parser gives the text back as it was.
    assert b"Jazz\\, soul\\; and" in r.content and b"\\\\ stuff\\nSecond line" in r.content

    live = found["Bob Live — bob_host"]
    assert live.decoded("DTSTART") == clock.now()  # when it really started
    assert len({str(e["UID"]) for e in found.values()}) == 3

    # A show that ends drops out; so does a host no longer followed.
    assert (await bob.post(f"/api/v1/shows/{ends}/end")).status_code == 200
    assert set(events_of((await anon.get(url)).content)) == {
        "Ada Late — ada_host",
        "Bob next week — bob_host",
    }
    await fan.delete(f"/api/v1/users/{ada_id}/follow")
    assert set(events_of((await anon.get(url)).content)) == {"Bob next week — bob_host"}
    # Moving the start moves the event.
    moved = _at(clock, 24 * 8).replace(microsecond=0)
    await bob.patch(f"/api/v1/shows/{next_week}", json={"scheduled_start": moved.isoformat()})
    again = events_of((await anon.get(url)).content)["Bob next week — bob_host"]
    assert again.decoded("DTSTART") == moved


async def test_scheduling_a_show_notifies_and_puts_it_in_the_feed(
    clock: FakeClock, person: Person, anon: httpx.AsyncClient
) -> None:
    host, host_id = await person("deejay")
    fan, _ = await person("fan")
    await fan.put(f"/api/v1/users/{host_id}/follow")
    url = await _feed_url(fan)
    assert events_of((await anon.get(url)).content) == {}

    start = _at(clock, 6).replace(microsecond=0)
    show_id = await _show(host, "Saturday Soul", start)
    notes = (await fan.get("/api/v1/notifications")).json()
    assert [(n["kind"], n["show"]["id"]) for n in notes["notifications"]] == [
        ("scheduled", show_id)
    ]
    event = events_of((await anon.get(url)).content)["Saturday Soul — deejay"]
    assert event.decoded("DTSTART") == start


async def test_the_feed_link_is_a_secret_that_can_be_replaced(
    person: Person, anon: httpx.AsyncClient
) -> None:
    fan, _ = await person("fan")
    other, _ = await person("other")
    assert (await fan.get("/api/v1/calendar")).json() == {"url": None}
    first = await _feed_url(fan)
    assert (await fan.get("/api/v1/calendar")).json() == {"url": first}
    token = first.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) >= 43  # 32 random bytes

    theirs = await _feed_url(other)
    assert theirs != first

    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "a" * 65, token.upper()):
        if wrong == token:
            continue
        r = await anon.get(f"/calendar/{wrong}.ics")
        assert r.status_code == 404, wrong

    second = await _feed_url(fan)
    assert second != first
    assert (await anon.get(first)).status_code == 404  # the old link is dead at once
    assert (await anon.get(second)).status_code == 200
    assert (await anon.get(theirs)).status_code == 200  # someone else's is untouched
    assert (await anon.get("/api/v1/calendar")).status_code == 401
    assert (await anon.post("/api/v1/calendar/token")).status_code == 401


async def test_a_suspended_users_feed_is_gone(
    app: FastAPI, clock: FakeClock, person: Person, anon: httpx.AsyncClient
) -> None:
    from onair.accounts.models import User

    fan, fan_id = await person("fan")
    url = await _feed_url(fan)
    async with app.state.onair.sessions() as db:
        user = await db.get(User, fan_id)
        assert user is not None
        user.suspended_until = clock.now() + timedelta(hours=1)
        await db.commit()
    assert (await anon.get(url)).status_code == 404
    clock.advance(3601)
    assert (await anon.get(url)).status_code == 200


async def test_add_to_calendar_gives_one_show_to_anyone(
    clock: FakeClock, person: Person, anon: httpx.AsyncClient
) -> None:
    host, _ = await person("deejay")
    start = _at(clock, 3).replace(microsecond=0)
    show_id = await _show(host, "Brunch, Beats; & Coffee", start, description="Line one\nTwo")
    r = await anon.get(f"/shows/{show_id}.ics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    assert f'filename="onair-show-{show_id}.ics"' in r.headers["content-disposition"]
    [(summary, event)] = events_of(r.content).items()
    assert summary == "Brunch, Beats; & Coffee — deejay"
    assert event.decoded("DTSTART") == start
    assert event.decoded("DTEND") == start + timedelta(hours=1)
    assert str(event["URL"]) == f"http://testserver/shows/{show_id}"
    assert str(event["DESCRIPTION"]).startswith("Line one\nTwo\n\n")

    undated = await _show(host, "Some day", None)
    assert (await anon.get(f"/shows/{undated}.ics")).status_code == 409
    await host.post(f"/api/v1/shows/{show_id}/end")
    r = await anon.get(f"/shows/{show_id}.ics", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "show_ended"
    assert (await anon.get("/shows/999999.ics")).status_code == 404
    assert (await anon.get("/shows/0.ics")).status_code == 404
    # The show page itself is still the page.
    assert (await anon.get(f"/shows/{undated}")).status_code == 200
