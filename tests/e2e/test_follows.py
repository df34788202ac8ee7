"""Following a host in Chromium: the listener follows with the keyboard, the host goes live (through
the API, from elsewhere), and the listener's open page hears of it in the header's bell; then the
notifications page, marking read and the private calendar link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import LiveServer
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_chat import XSS, assert_inert
from tests.e2e.test_host_flow import shoot, watch_for_errors

pytestmark = pytest.mark.e2e


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Presses Tab until the element is focused, as a keyboard user gets there."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_follow_with_the_keyboard_and_the_bell_hears_the_host_go_live(
    browser: BrowserContext, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    host = httpx.Client(base_url=base, timeout=10)
    r = host.post(
        "/api/v1/accounts/signup",
        json={
            "username": "bell_host",
            "email": "bell_host@example.org",
            "password": "a long enough password",
            "display_name": f"Host {XSS}",
        },
    )
    assert r.status_code == 201, r.text
    host_id = r.json()["id"]
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    show = host.post(
        "/api/v1/shows",
        json={"title": f"Night Owls {XSS}", "scheduled_start": start.isoformat()},
    ).json()

    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, base, "bell_fan", "Bell Fan")
    page.goto(f"{base}/users/bell_host")
    expect(page.locator("h1")).to_have_text(f"Host {XSS}")
    follow = page.get_by_role("button", name="Follow")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(page.locator("[data-follower-count]")).to_have_text("0 followers")
    # The bell is connected before anything happens.
    expect(page.locator("[data-bell]")).to_have_attribute("data-stream", "open")

    tab_to(page, "[data-follow-button]")
    page.keyboard.press("Enter")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(follow).to_have_text("Following")
    expect(follow).to_be_focused()
    expect(page.locator("[data-follower-count]")).to_have_text("1 follower")
    assert host.get(f"/api/v1/users/{host_id}/follow").json()["followers"] == 1

    # The host goes live from their own machine; the open page's bell rings.
    assert host.post(f"/api/v1/shows/{show['id']}/live").status_code == 200
    bell = page.locator("[data-bell]")
    expect(bell.locator("[data-bell-count]")).to_have_text("1")
    expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
    notice = page.locator("[data-notice]")
    expect(notice).to_have_count(1)
    expect(notice.get_by_role("link")).to_have_text(f"Host {XSS} is live: Night Owls {XSS}")
    assert_inert(page)
    shoot(page, artifacts, "follows-bell")

    # The notice is reachable by keyboard; then to the notifications page by the bell.
    tab_to(page, "[data-notice] a")
    tab_to(page, "[data-bell]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/notifications")
    item = page.locator("[data-notification-id]")
    expect(item).to_have_count(1)
    expect(item).to_have_class("notification unread")
    expect(item.locator(".notification-title")).to_have_text(f"Night Owls {XSS}")
    expect(page.locator("[data-followed] a")).to_have_text(f"Host {XSS}")

    tab_to(page, "[data-mark-all-read]")
    page.keyboard.press("Enter")
    expect(page.locator("[data-unread-line]")).to_have_text("All caught up.")
    expect(bell.locator("[data-bell-count]")).to_be_hidden()
    expect(item).to_have_class("notification")

    # The private calendar link: made with the keyboard, read by a calendar app (no cookie).
    tab_to(page, "[data-calendar-new]")
    page.keyboard.press("Enter")
    link = page.locator("[data-calendar-url]")
    expect(link).to_be_focused()
    url = link.input_value()
    assert url.startswith(f"{base}/calendar/") and url.endswith(".ics")
    feed = Calendar.from_ical(httpx.get(url, timeout=10).content)
    assert [str(e["SUMMARY"]) for e in feed.walk("VEVENT")] == [f"Night Owls {XSS} — Host {XSS}"]
    assert_inert(page)
    shoot(page, artifacts, "follows-notifications")

    # The show page: the same follow button, and "add to calendar".
    page.goto(f"{base}/shows/{show['id']}")
    expect(page.get_by_role("button", name="Following")).to_have_attribute("aria-pressed", "true")
    ics = page.get_by_role("link", name="Add to calendar")
    expect(ics).to_have_attribute("href", f"/shows/{show['id']}.ics")
    shoot(page, artifacts, "follows-show-page")
    host.post(f"/api/v1/shows/{show['id']}/end")
    host.close()
    assert errors == []
