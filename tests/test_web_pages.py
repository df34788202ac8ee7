"""The pages, read the way a browser reads them: status codes, sections, escaping, redirects."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from tests.conftest import sign_up

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    r = await client.get(path, headers=HTML)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def section(html: str, section_id: str) -> str:
    """The markup of one <section id=...> on a page."""
    match = re.search(rf'<section[^>]*id="{section_id}"[^>]*>(.*?)</section>', html, re.S)
    assert match, f"no section {section_id!r}"
    return match.group(1)


def _in(clock: FakeClock, hours: float) -> str:
    return (clock.now() + timedelta(hours=hours)).isoformat()


async def new_show(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/shows", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def tracks(app: FastAPI, clock: FakeClock) -> list[int]:
    async with app.state.onair.sessions() as db:
        written = await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"web:{i}",
                    title=title,
                    artists=("The Testers",),
                    album="Paper Songs",
                    genres=("Jazz",),
                    duration_s=duration,
                    explicit=explicit,
                    audio_path=f"/nonexistent/{i}.mp3",
                )
                for i, (title, duration, explicit) in enumerate(
                    [("Harbour Lights", 185.4, False), ("Neon Drive", 61.0, True)]
                )
            ]
        )
        await db.commit()
        return [t.id for t in written]


async def test_every_page_renders_for_a_visitor(client: httpx.AsyncClient) -> None:
    for path in ("/", "/signup", "/login", "/search", "/search?q=harbour"):
        html = await page(client, path)
        assert "OnAir" in html and 'href="#main"' in html
    r = await client.get("/", headers=HTML)
    assert "script-src 'self'" in r.headers["content-security-policy"]
    home = await page(client, "/")
    assert "Nobody is live right now" in home and 'href="/shows/new"' in home
    assert 'href="/signup"' in home and "Log out" not in home


async def test_static_modules_are_served(client: httpx.AsyncClient) -> None:
    for name in ("common.js", "auth.js", "search.js", "new_show.js", "console.js", "tracks.js"):
        r = await client.get(f"/static/{name}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], name
    assert (await client.get("/static/onair.css")).status_code == 200


async def test_home_puts_shows_in_their_sections_in_order(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "early")
    later = await new_show(client, title="Later Show", scheduled_start=_in(clock, 5))
    sooner = await new_show(client, title="Sooner Show", scheduled_start=_in(clock, 1))
    await new_show(client, title="Whenever Show")
    await sign_up(client, "livehost")
    live = await new_show(client, title="Live Show", genre="Jazz")
    assert (await client.post(f"/api/v1/shows/{live['id']}/live")).status_code == 200
    await sign_up(client, "done")
    done = await new_show(client, title="Done Show")
    await client.post(f"/api/v1/shows/{done['id']}/live")
    await client.post(f"/api/v1/shows/{done['id']}/end")

    home = await page(client, "/")
    live_now, coming, recent = (section(home, s) for s in ("live", "upcoming", "recent"))
    assert "Live Show" in live_now and "Sooner Show" not in live_now
    assert "Nobody is live" not in home
    assert coming.index("Sooner Show") < coming.index("Later Show") < coming.index("Whenever")
    assert "Done Show" in recent and "Live Show" not in recent
    # The time is rendered in UTC for the script to rewrite in the viewer's zone.
    assert (
        f'<time datetime="{sooner["scheduled_start"]}" data-local>Thu 1 Jan 2026, 13:00 UTC</time>'
        in coming
    )
    assert later["scheduled_start"] == "2026-01-01T17:00:00Z"
    assert 'href="/genres/jazz"' in section(home, "genres")


async def test_genre_and_host_pages_list_their_shows(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "jazzcat")
    await new_show(client, title="Cool Jazz", genre="Jazz", scheduled_start=_in(clock, 2))
    await sign_up(client, "rocker")
    await new_show(client, title="Loud Rock", genre="Rock", scheduled_start=_in(clock, 3))

    jazz = await page(client, "/genres/jazz")
    assert "Cool Jazz" in section(jazz, "upcoming") and "Loud Rock" not in jazz
    rocker = await page(client, "/users/rocker")
    assert "Loud Rock" in rocker and "Cool Jazz" not in rocker
    await page(client, "/genres/polka", 404)
    await page(client, "/users/nobody", 404)


async def test_a_hostile_title_is_escaped_on_every_page(
    client: httpx.AsyncClient, clock: FakeClock, tracks: list[int]
) -> None:
    r = await client.post(
        "/api/v1/accounts/signup",
        json={
            "username": "mallory",
            "email": "m@example.org",
            "password": "password-m",
            "display_name": '<img src=x onerror="alert(2)">',
        },
    )
    assert r.status_code == 201
    show = await new_show(
        client,
        title=XSS,
        description=XSS,
        genre="<b>Jazz</b>",
        scheduled_start=_in(clock, 1),
    )
    await client.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": tracks[0]})
    sid = show["id"]
    for path in (
        "/",
        f"/shows/{sid}",
        f"/shows/{sid}/console",
        "/users/mallory",
        "/genres/b-jazz-b",
        f"/search?q={XSS}",
    ):
        html = await page(client, path)
        assert XSS not in html and "<img src=x" not in html and "<b>Jazz" not in html, path
        assert XSS_ESCAPED in html or path == "/genres/b-jazz-b", path
    console = await page(client, f"/shows/{sid}/console")
    # The queue's JSON for the script is escaped for HTML too.
    data = re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', console)
    assert data and "<" not in data.group(1)


async def test_console_is_for_the_host_only(client: httpx.AsyncClient) -> None:
    await sign_up(client, "owner")
    show = await new_show(client, title="Mine")
    console = await page(client, f"/shows/{show['id']}/console")
    assert "Go live" in console and "Add songs" in console

    await sign_up(client, "stranger")
    refused = await page(client, f"/shows/{show['id']}/console", 403)
    assert "only the show" in refused.lower() and "Go live" not in refused
    assert "stranger" in refused  # still signed in on the error page

    client.cookies.clear()
    r = await client.get(f"/shows/{show['id']}/console", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=/shows/{show['id']}/console"
    r = await client.get("/shows/new", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/shows/new"


async def test_missing_things_get_an_html_404_but_the_api_keeps_json(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/shows/999", "/shows/not-a-number", "/no/such/page"):
        html = await page(client, path, 404)
        assert "Page not found" in html and 'href="/"' in html
    api = await client.get("/api/v1/shows/999", headers=HTML)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    plain = await client.get("/no/such/page", headers={"accept": "application/json"})
    assert plain.status_code == 404 and plain.json()["error"]["code"] == "not_found"


async def test_show_page_shows_status_and_the_empty_now_playing_slot(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "dj_night")
    show = await new_show(
        client,
        title="Night Shift",
        description="Line one\nLine two",
        genre="Jazz",
        hashtags=["late", "night"],
        scheduled_start=_in(clock, 3),
    )
    html = await page(client, f"/shows/{show['id']}")
    assert "Night Shift" in html and "Scheduled" in html and "Nothing playing yet" in html
    assert "#late" in html and "#night" in html and "Line one\nLine two" in html
    assert f'href="/shows/{show["id"]}/console"' in html  # the host gets a way back
    await client.post(f"/api/v1/shows/{show['id']}/live")
    client.cookies.clear()
    html = await page(client, f"/shows/{show['id']}")
    assert "status-live" in html and "console" not in html


async def test_console_lists_the_queue_in_order(
    client: httpx.AsyncClient, tracks: list[int]
) -> None:
    await sign_up(client, "queuer")
    show = await new_show(client, title="Queued")
    for track_id in (tracks[1], tracks[0]):
        await client.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": track_id})
    console = await page(client, f"/shows/{show['id']}/console")
    queue = re.search(r"<ol[^>]*data-queue.*?</ol>", console, re.S)
    assert queue and queue.group(0).index("Neon Drive") < queue.group(0).index("Harbour Lights")
    assert 'aria-label="Move Neon Drive up" disabled' in console
    assert "The queue is empty" in console  # present but hidden, for when the queue empties


async def test_search_page_lists_tracks_without_javascript(
    client: httpx.AsyncClient, tracks: list[int]
) -> None:
    html = await page(client, "/search?q=neon")
    songs = re.search(r'<section[^>]*data-group="songs"[^>]*>(.*?)</section>', html, re.S)
    assert songs and "Neon Drive" in songs.group(1)
    assert "The Testers · Paper Songs" in songs.group(1) and "Results for “neon”" in html
    html = await page(client, "/search?q=zzz")
    assert "Nothing matches “zzz”." in html


async def test_log_in_pages_redirect_signed_in_users_and_refuse_foreign_next(
    client: httpx.AsyncClient,
) -> None:
    html = await page(client, "/login?next=//evil.example/x")
    assert 'data-next="/"' in html
    html = await page(client, "/login?next=/shows/new")
    assert 'data-next="/shows/new"' in html
    await sign_up(client, "already")
    r = await client.get("/login?next=/shows/new", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/shows/new"
    r = await client.get("/signup?next=https://evil.example", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/"
    home = await page(client, "/")
    assert "Log out" in home and 'href="/users/already"' in home and "New show" in home


async def test_a_crash_in_a_page_is_an_html_500_and_logged(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr("onair.web.router.shows.get_show", broken)
    html = await page(client, "/shows/1", 500)
    assert "Something went wrong" in html and "on fire" not in html
    assert any("unhandled error on GET /shows/1" in r.getMessage() for r in caplog.records)


async def test_an_html_error_page_keeps_what_the_error_says_in_its_headers(
    client: httpx.AsyncClient,
) -> None:
    # A browser POSTing to a page gets the page-styled 405, still saying which methods work.
    r = await client.post("/", headers=HTML)
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["allow"] == "GET"
