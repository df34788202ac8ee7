"""A host's first evening, in a real browser: sign up, schedule a show, queue songs, go live."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Europe/Amsterdam")
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


def shoot(page: Page, artifacts: Path, name: str) -> None:
    """Full-page screenshots at desktop and phone sizes (looked at by hand, kept out of git)."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def queue_titles(page: Page) -> list[str]:
    return page.locator("[data-queue] .track-title").all_inner_texts()


def watch_for_errors(page: Page) -> list[str]:
    """Script errors, CSP refusals and server errors; refusals the test provokes (4xx) are fine."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", on_console)
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    return errors


def add_song(page: Page, query: str, title: str) -> None:
    search = page.get_by_label("Search playable songs")
    search.fill(query)
    results = page.locator("[data-catalog-results]")
    expect(results.get_by_text(title, exact=True)).to_be_visible()
    expect(results.get_by_text("Neon Paper")).to_have_count(0)  # metadata-only, not offered
    before = page.locator("[data-queue] li").count()
    results.get_by_role("button", name=f"Add {title} to the queue").click()
    expect(page.locator("[data-queue] li")).to_have_count(before + 1)


def test_a_host_schedules_queues_and_goes_live(
    browser: BrowserContext, live_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    # `browser` comes first so a missing Chromium skips before a server is started.
    base = live_server.url
    page = browser.new_page()
    errors = watch_for_errors(page)

    # The home page before anyone hosts; the skip link is the first thing Tab reaches.
    page.goto(base + "/")
    expect(page.get_by_text("Nobody is live right now")).to_be_visible()
    shoot(page, artifacts, "home-empty")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Sign up, with an error from the API shown inline first.
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill("dj_nova")
    page.get_by_label("Email").fill("nova@example.org")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("[data-form-error]")).to_contain_text("Password")
    expect(page.get_by_label("Password")).to_be_focused()
    shoot(page, artifacts, "signup-error")
    page.get_by_label("Display name").fill("DJ Nova")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(base + "/")
    expect(page.get_by_role("link", name="DJ Nova")).to_be_visible()

    # A show scheduled for tomorrow 20:30 in the browser's zone, with a cover.
    start = (datetime.now(ZONE) + timedelta(days=1)).replace(
        hour=20, minute=30, second=0, microsecond=0
    )
    cover = tmp_path / "cover.png"
    Image.new("RGB", (400, 400), (32, 90, 170)).save(cover)
    page.get_by_role("link", name="New show").click()
    page.get_by_label("Title").fill("Harbour Sessions")
    page.get_by_label("Description").fill("Late songs by the water.\nRequests welcome.")
    page.get_by_label("Genre").fill("Jazz")
    page.get_by_label("Hashtags").fill("#late, harbour")
    page.get_by_label("Starts at").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Cover image").set_input_files(str(cover))
    shoot(page, artifacts, "new-show")
    page.get_by_role("button", name="Create show").click()
    page.wait_for_url("**/shows/*/console")
    show_id = page.url.rstrip("/").split("/")[-2]
    expect(page.locator("[data-status-badge]")).to_have_text("Scheduled")

    # Queue three songs found through the catalog search, then move one up.
    add_song(page, "sugar", "Sugar Plum Dance")
    add_song(page, "harbour", "Harbour Lights")
    add_song(page, "neon", "Neon Drive")
    assert queue_titles(page) == ["Sugar Plum Dance", "Harbour Lights", "Neon Drive"]
    page.get_by_role("button", name="Move Neon Drive up").click()
    expect(page.locator("[data-queue] li").nth(1)).to_contain_text("Neon Drive")
    assert queue_titles(page) == ["Sugar Plum Dance", "Neon Drive", "Harbour Lights"]
    api_queue = page.request.get(f"{base}/api/v1/shows/{show_id}/queue").json()
    assert [i["track"]["title"] for i in api_queue["upcoming"]] == queue_titles(page)

    # Keyboard only: from the search box, Shift+Tab reaches the last row's buttons.
    page.get_by_label("Search playable songs").focus()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Remove Harbour Lights")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # "down" is disabled on the last row, so Tab skips it
    expect(page.get_by_role("button", name="Move Harbour Lights up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-queue] li").nth(1)).to_contain_text("Harbour Lights")
    expect(page.get_by_role("button", name="Move Harbour Lights up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-queue] li").first).to_contain_text("Harbour Lights")
    # At the top "up" is disabled, so focus moves to "down" rather than being lost.
    expect(page.get_by_role("button", name="Move Harbour Lights down")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("[data-queue] li").nth(1)).to_contain_text("Harbour Lights")
    assert queue_titles(page) == ["Sugar Plum Dance", "Harbour Lights", "Neon Drive"]
    expect(page.locator("[data-queue-status]")).to_contain_text("Moved Harbour Lights")
    shoot(page, artifacts, "console-scheduled")

    # Listed under "Coming up", at 20:30 in the viewer's zone, stored as the right instant.
    page.goto(base + "/")
    coming = page.locator("#upcoming")
    expect(coming.get_by_role("link", name="Harbour Sessions")).to_be_visible()
    when = coming.locator("time")
    assert when.get_attribute("datetime") == start.astimezone(ZoneInfo("UTC")).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    expect(when).to_contain_text("20:30")
    expect(when).not_to_contain_text("UTC")
    expect(page.locator("#live")).to_contain_text("Nobody is live right now")
    shoot(page, artifacts, "home-upcoming")

    # Go live by keyboard: Tab from the listener-page link, past the show's analytics, to the
    # button; Enter presses it.
    page.goto(f"{base}/shows/{show_id}/console")
    page.get_by_role("link", name="Open the listener page").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Analytics")).to_be_focused()
    page.keyboard.press("Tab")
    go_live = page.get_by_role("button", name="Go live")
    expect(go_live).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-status-badge]")).to_have_text("Live")
    expect(go_live).to_be_hidden()
    expect(page.get_by_role("button", name="End show")).to_be_focused()
    expect(page.locator("[data-status-message]")).to_contain_text("You are live")
    shoot(page, artifacts, "console-live")

    page.goto(base + "/")
    live = page.locator("#live")
    expect(live.get_by_role("link", name="Harbour Sessions")).to_be_visible()
    expect(live.locator("[data-status-badge]")).to_have_text("Live")
    expect(page.locator("#upcoming")).not_to_contain_text("Harbour Sessions")
    shoot(page, artifacts, "home-live")

    live.get_by_role("link", name="Harbour Sessions").click()
    page.wait_for_url(f"{base}/shows/{show_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Sessions")
    expect(page.locator("[data-status-badge]")).to_have_text("Live")
    # Going live starts the studio: the queue (or the auto-DJ after it) is on air at once.
    expect(page.locator("[data-np-title]")).to_be_visible()
    expect(page.get_by_text("#late")).to_be_visible()
    assert page.locator("img.cover").evaluate("img => img.naturalWidth") == 400
    shoot(page, artifacts, "show-live")

    # Back in the console: an API refusal shows inline, then a fix saves; then end the show.
    page.get_by_role("link", name="Open the host console").click()
    page.get_by_label("Hashtags").fill("#late #no-dashes")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("[data-edit-error]")).to_contain_text("no-dashes")
    page.get_by_label("Hashtags").fill("#late #harbour #jazz")
    page.get_by_label("Title").fill("Harbour Sessions Live")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("[data-edit-status]")).to_have_text("Saved.")
    expect(page.locator("[data-edit-error]")).to_be_empty()
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Sessions Live")
    end = page.locator("[data-end-show]")
    end.click()
    expect(end).to_have_text("Press again to end")
    end.click()
    expect(page.locator("[data-status-badge]")).to_have_text("Ended")
    expect(page.locator("[data-status-message]")).to_contain_text("The show has ended")
    expect(page.get_by_label("Search playable songs")).to_be_disabled()
    shoot(page, artifacts, "console-ended")
    page.goto(base + "/")
    expect(
        page.locator("#recent").get_by_role("link", name="Harbour Sessions Live")
    ).to_be_visible()
    expect(page.locator("#live")).to_contain_text("Nobody is live right now")

    # Log out; a page that needs an account sends the visitor through log-in and back.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.goto(base + "/shows/new")
    page.wait_for_url("**/login?next=/shows/new")
    page.get_by_label("Username or email").fill("dj_nova")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("[data-form-error]")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/shows/new")

    response = page.goto(base + "/shows/99999")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    shoot(page, artifacts, "not-found")

    # Search page as a listener would use it.
    page.goto(base + "/search")
    page.get_by_label("Shows, hosts, hashtags, artists and songs").press_sequentially(
        "neo", delay=30
    )
    neon = page.locator("[data-group=songs] li").filter(has_text="Neon Drive")
    expect(neon).to_contain_text("3:07")
    expect(neon).to_contain_text("Explicit")
    expect(neon).to_contain_text("Synth Avenue, Mira K")
    assert page.url.endswith("/search?q=neo")
    shoot(page, artifacts, "search")

    assert errors == []
