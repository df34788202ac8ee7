"""Following hosts and being told: the follow API, notifications written for every follower when
a followed host goes live or schedules a show, and the live stream an open page listens to
(read over a real server, as a browser's EventSource does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from onair.accounts.models import Role, User
from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade
from onair.settings import Settings
from onair.shows.follows.models import Follow, Notification
from tests.conftest import sign_up
from tests.discovery.conftest import Person
from tests.server import RunningServer, serve

PASSWORD = "correct horse"
FOLLOWS_PER_HOUR = 6


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        signup_per_hour=1000,
        login_per_minute=1000,
        follows_per_hour=FOLLOWS_PER_HOUR,
    )


def _in(clock: FakeClock, hours: float) -> str:
    return (clock.now() + timedelta(hours=hours)).isoformat()


# --- following ---------------------------------------------------------------------------------


async def test_follow_is_idempotent_counted_in_public_and_listed_for_me(
    app: FastAPI, person: Person
) -> None:
    host, host_id = await person("deejay")
    fan, fan_id = await person("fan")
    other, _ = await person("other")
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    r = await anon.get(f"/api/v1/users/{host_id}/follow")
    assert r.json() == {
        "host": {"id": host_id, "username": "deejay", "display_name": "deejay"},
        "following": False,
        "followers": 0,
    }
    for _ in range(2):  # twice: still one follow
        r = await fan.put(f"/api/v1/users/{host_id}/follow")
        assert r.status_code == 200, r.text
        assert r.json()["following"] is True and r.json()["followers"] == 1
    await other.put(f"/api/v1/users/{host_id}/follow")
    assert (await anon.get(f"/api/v1/users/{host_id}/follow")).json()["followers"] == 2
    assert (await fan.get(f"/api/v1/users/{host_id}/follow")).json()["following"] is True

    mine = (await fan.get("/api/v1/follows")).json()
    assert [f["host"]["username"] for f in mine] == ["deejay"]
    assert (await host.get("/api/v1/follows")).json() == []

    # Who follows is for the host (and moderators) alone.
    listed = (await host.get(f"/api/v1/users/{host_id}/followers")).json()
    assert sorted(u["username"] for u in listed) == ["fan", "other"]
    assert (await fan.get(f"/api/v1/users/{host_id}/followers")).status_code == 403
    assert (await anon.get(f"/api/v1/users/{host_id}/followers")).status_code == 401

    for _ in range(2):
        r = await fan.delete(f"/api/v1/users/{host_id}/follow")
        assert r.status_code == 200 and r.json()["following"] is False
    assert (await anon.get(f"/api/v1/users/{host_id}/follow")).json()["followers"] == 1

    # Not yourself, not nobody, not signed out.
    r = await host.put(f"/api/v1/users/{host_id}/follow")
    assert r.status_code == 422 and "yourself" in r.json()["error"]["message"]
    assert (await fan.put("/api/v1/users/999999/follow")).status_code == 404
    assert (await anon.put(f"/api/v1/users/{host_id}/follow")).status_code == 401
    assert (await anon.get("/api/v1/follows")).status_code == 401
    assert fan_id != host_id
    await anon.aclose()


async def test_toggling_follows_is_rate_limited_per_user(
    app: FastAPI, clock: FakeClock, person: Person
) -> None:
    _host, host_id = await person("deejay")
    fan, _ = await person("fan")
    calm, _ = await person("calm")
    for i in range(FOLLOWS_PER_HOUR):
        method = fan.put if i % 2 == 0 else fan.delete
        assert (await method(f"/api/v1/users/{host_id}/follow")).status_code == 200
    r = await fan.put(f"/api/v1/users/{host_id}/follow")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) > 0
    # Someone else is not held back by it.
    assert (await calm.put(f"/api/v1/users/{host_id}/follow")).status_code == 200
    clock.advance(3600 / FOLLOWS_PER_HOUR + 1)
    assert (await fan.put(f"/api/v1/users/{host_id}/follow")).status_code == 200


# --- notifications -----------------------------------------------------------------------------


async def test_scheduling_and_going_live_notify_followers_once_each(
    app: FastAPI, clock: FakeClock, person: Person
) -> None:
    host, host_id = await person("deejay")
    fan, _ = await person("fan")
    stranger, _ = await person("stranger")
    await fan.put(f"/api/v1/users/{host_id}/follow")
    start = _in(clock, 3)
    r = await host.post(
        "/api/v1/shows", json={"title": "Night <b>Jazz</b>", "scheduled_start": start}
    )
    show = r.json()
    # An undated show tells nobody anything.
    await host.post("/api/v1/shows", json={"title": "Some day"})

    got = (await fan.get("/api/v1/notifications")).json()
    assert got["unread"] == 1
    [note] = got["notifications"]
    assert note["kind"] == "scheduled" and note["read"] is False
    assert note["show"]["id"] == show["id"] and note["show"]["title"] == "Night <b>Jazz</b>"
    assert note["show"]["url"] == f"/shows/{show['id']}"
    assert note["host"]["username"] == "deejay"
    assert (await stranger.get("/api/v1/notifications")).json() == {
        "unread": 0,
        "notifications": [],
    }

    # Moving the start replaces the unread notice rather than piling up another.
    later = _in(clock, 5)
    await host.patch(f"/api/v1/shows/{show['id']}", json={"scheduled_start": later})
    got = (await fan.get("/api/v1/notifications")).json()
    assert got["unread"] == 1 and len(got["notifications"]) == 1
    assert got["notifications"][0]["show"]["scheduled_start"].startswith(later[:16])
    # Editing anything else tells nobody.
    await host.patch(f"/api/v1/shows/{show['id']}", json={"title": "Night Jazz"})
    assert (await fan.get("/api/v1/notifications")).json()["unread"] == 1

    r = await host.post(f"/api/v1/shows/{show['id']}/live")
    assert r.status_code == 200, r.text
    got = (await fan.get("/api/v1/notifications")).json()
    assert [n["kind"] for n in got["notifications"]] == ["live"]
    assert got["unread"] == 1
    # Going live again (it is live already) is no news.
    await host.post(f"/api/v1/shows/{show['id']}/live")
    assert len((await fan.get("/api/v1/notifications")).json()["notifications"]) == 1

    # Mark read: one by id (someone else's id does nothing), then all.
    live_id = got["notifications"][0]["id"]
    r = await stranger.post("/api/v1/notifications/read", json={"ids": [live_id]})
    assert r.json() == {"unread": 0}
    assert (await fan.get("/api/v1/notifications")).json()["unread"] == 1
    assert (await fan.post("/api/v1/notifications/read", json={"ids": [live_id]})).json() == {
        "unread": 0
    }
    listed = (await fan.get("/api/v1/notifications")).json()
    assert listed["notifications"][0]["read"] is True

    # A read notice stays; a new show's news comes on top of it.
    await host.post(f"/api/v1/shows/{show['id']}/end")
    nxt = await host.post("/api/v1/shows", json={"title": "Encore", "scheduled_start": start})
    got = (await fan.get("/api/v1/notifications")).json()
    assert [(n["kind"], n["show"]["id"]) for n in got["notifications"]] == [
        ("scheduled", nxt.json()["id"]),
        ("live", show["id"]),
    ]
    assert (await fan.post("/api/v1/notifications/read", json={})).json() == {"unread": 0}
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    assert (await anon.get("/api/v1/notifications")).status_code == 401
    assert (await anon.post("/api/v1/notifications/read", json={})).status_code == 401
    await anon.aclose()


async def test_a_host_with_thousands_of_followers_goes_live_and_every_one_is_told(
    app: FastAPI, clock: FakeClock, person: Person
) -> None:
    """Above the inline limit the fan-out runs after the response, in one bulk insert."""
    host, host_id = await person("star")
    fan, _ = await person("fan")
    onair = app.state.onair
    many = onair.notifier.inline_limit * 3
    async with onair.sessions() as db:
        users = [
            User(
                username=f"f{i}",
                display_name=f"F {i}",
                email=f"f{i}@example.org",
                password_hash="x",
                role=Role.listener,
                created_at=clock.now(),
            )
            for i in range(many)
        ]
        db.add_all(users)
        await db.flush()
        db.add_all(Follow(follower_id=u.id, host_id=host_id, created_at=clock.now()) for u in users)
        await db.commit()
    await fan.put(f"/api/v1/users/{host_id}/follow")
    show = (await host.post("/api/v1/shows", json={"title": "Big night"})).json()
    r = await host.post(f"/api/v1/shows/{show['id']}/live")
    assert r.status_code == 200 and r.json()["status"] == "live"
    await onair.notifier.idle()
    async with onair.sessions() as db:
        told = await db.scalar(
            select(func.count()).select_from(Notification).where(Notification.show_id == show["id"])
        )
    assert told == many + 1
    assert (await fan.get("/api/v1/notifications")).json()["unread"] == 1


# --- the live stream, over a real server --------------------------------------------------------


@dataclass
class Sse:
    event: str  # "message" when the server named none; "comment" for a ": ..." line
    data: str
    id: str | None = None

    def json(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(self.data)
        return found


def read_events(response: httpx.Response) -> Iterator[Sse]:
    """Server-sent events as the HTML standard parses them, comments included."""
    event, data, event_id = "message", [], None
    for line in response.iter_lines():
        if line.startswith(":"):
            yield Sse("comment", line[1:].strip())
        elif not line:
            if data:
                yield Sse(event, "\n".join(data), event_id)
            event, data = "message", []
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


def next_event(events: Iterator[Sse], kind: str) -> Sse:
    for e in events:
        if e.event == kind:
            return e
    raise AssertionError(f"the stream ended before a {kind!r} event")


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    settings.notification_heartbeat_s = 0.2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings, FakeClock())) as running:
        yield running


def _browser(server: RunningServer, name: str) -> tuple[httpx.Client, int]:
    client = httpx.Client(base_url=server.url, timeout=10)
    r = client.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return client, int(r.json()["id"])


STREAM = "/api/v1/notifications/stream"


def test_a_follower_with_the_page_open_hears_the_host_go_live(server: RunningServer) -> None:
    host, host_id = _browser(server, "deejay")
    fan, _ = _browser(server, "fan")
    with closing(host), closing(fan):
        assert fan.put(f"/api/v1/users/{host_id}/follow").status_code == 200
        show = host.post("/api/v1/shows", json={"title": "Late; Night, Jazz"}).json()
        with fan.stream("GET", STREAM) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            events = read_events(r)
            assert next_event(events, "unread").json() == {"unread": 0}
            # The stream stays open with comments while nothing happens.
            assert next_event(events, "comment").data == "heartbeat"

            live = host.post(f"/api/v1/shows/{show['id']}/live")
            assert live.status_code == 200, live.text
            heard = next_event(events, "notification")
            note = heard.json()
            assert note["kind"] == "live" and note["unread"] == 1
            assert note["show"] == {
                "id": show["id"],
                "title": "Late; Night, Jazz",
                "status": "live",
                "scheduled_start": None,
                "url": f"/shows/{show['id']}",
            }
            assert note["host"] == {"id": host_id, "username": "deejay", "display_name": "deejay"}
            listed = fan.get("/api/v1/notifications").json()["notifications"]
            assert heard.id == str(note["id"]) == str(listed[0]["id"])

            # Read on another page: this one's bell hears the new count.
            fan.post("/api/v1/notifications/read", json={})
            assert next_event(events, "unread").json() == {"unread": 0}

        # A page that reconnects says what it saw last and gets what it missed.
        with fan.stream("GET", STREAM, headers={"Last-Event-ID": str(int(heard.id) - 1)}) as r:
            events = read_events(r)
            assert next_event(events, "unread").json() == {"unread": 0}
            again = next_event(events, "notification")
            assert again.id == heard.id and again.json()["read"] is True


def test_the_stream_needs_a_session(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        r = anon.get(STREAM)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        r = anon.get(STREAM, headers={"Cookie": "onair_session=not-a-session"})
        assert r.status_code == 401


def test_a_suspended_user_loses_the_stream(server: RunningServer) -> None:
    fan, fan_id = _browser(server, "fan")
    mod, mod_id = _browser(server, "mod")

    async def promote() -> None:
        async with server.app.state.onair.sessions() as db:
            user = await db.get(User, mod_id)
            user.role = Role.moderator
            await db.commit()

    server.call(promote())
    with closing(fan), closing(mod):
        with fan.stream("GET", STREAM) as r:
            events = read_events(r)
            next_event(events, "unread")
            suspended = mod.post(
                f"/api/v1/moderation/users/{fan_id}/suspend",
                json={"reason": "spam", "hours": 2},
            )
            assert suspended.status_code == 200, suspended.text
            assert next_event(events, "closed").json() == {"reason": "suspended"}
            assert list(events) == []  # and then it ends
        assert fan.get(STREAM).status_code == 401


def test_the_stream_ends_cleanly_when_the_server_stops(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings, FakeClock())) as running:
        fan, _ = _browser(running, "fan")
        with closing(fan), fan.stream("GET", STREAM) as r:
            events = read_events(r)
            next_event(events, "unread")
            running.server.should_exit = True
            # The body ends properly (a cancelled response would break off mid-stream, and
            # httpx would raise), after telling the page why.
            assert next_event(events, "closed").json() == {"reason": "server_shutdown"}
            assert list(events) == []


@pytest.mark.postgres
async def test_follows_notifications_and_the_feed_on_postgres(
    postgres_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    from icalendar import Calendar

    from onair.db.migrate import upgrade_async

    await upgrade_async(postgres_url)
    app = create_app(Settings(data_dir=tmp_path, database_url=postgres_url), clock)
    app.state.onair.notifier.inline_limit = 0  # the background fan-out, on PostgreSQL too

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pg")

    async with client() as host, client() as fan, client() as feed_reader:
        host_id = (await sign_up(host, "pg_host"))["id"]
        await sign_up(fan, "pg_fan")
        for _ in range(2):  # the second one hits ON CONFLICT DO NOTHING
            assert (await fan.put(f"/api/v1/users/{host_id}/follow")).json()["followers"] == 1
        start = _in(clock, 2)
        show = (
            await host.post("/api/v1/shows", json={"title": "PG Night", "scheduled_start": start})
        ).json()
        await app.state.onair.notifier.idle()
        got = (await fan.get("/api/v1/notifications")).json()
        assert [n["kind"] for n in got["notifications"]] == ["scheduled"] and got["unread"] == 1
        assert (await host.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
        await app.state.onair.notifier.idle()
        got = (await fan.get("/api/v1/notifications")).json()
        assert [n["kind"] for n in got["notifications"]] == ["live"]
        url = (await fan.post("/api/v1/calendar/token")).json()["url"]
        cal = Calendar.from_ical((await feed_reader.get(url)).content)
        assert [str(e["SUMMARY"]) for e in cal.walk("VEVENT")] == ["PG Night — pg_host"]
        await host.post(f"/api/v1/shows/{show['id']}/end")
    await app.state.onair.stations.aclose()
    await app.state.onair.engine.dispose()


async def test_a_stream_that_falls_behind_is_closed_and_no_one_else_is_held_up() -> None:
    from onair.shows.follows.notifications import STREAM_QUEUE, NotificationHub

    hub = NotificationHub()
    stuck, reading, other = hub.subscribe(1), hub.subscribe(1), hub.subscribe(2)
    for i in range(STREAM_QUEUE):
        assert hub.publish(1, "notification", {"n": i}, event_id=i) == 2
        assert await reading.next(0) is not None
    # One more than it can hold: the one that never reads is closed (it reconnects with
    # Last-Event-ID and catches up from the database); the one that reads goes on.
    assert hub.publish(1, "notification", {"n": "more"}) == 1
    assert stuck.closed == "too_slow" and reading.closed is None
    assert hub.publish(2, "unread", {"unread": 0}) == 1
    event = await other.next(0)
    assert event is not None and event.sse == b'event: unread\ndata: {"unread":0}\n\n'
    assert hub.disconnect_user(1, "banned") == 2 and reading.closed == "banned"
    await hub.aclose()
    assert other.closed == "server_shutdown"
