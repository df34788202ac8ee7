"""A song request in real browsers: a listener finds a song from the show page and asks for it
with a dedication; the host's console shows it with its count and puts it on the queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import DESKTOP, queue_titles, shoot, watch_for_errors

pytestmark = pytest.mark.e2e

SONG = "Harbour Lights"
# Markup in a dedication must arrive as the words typed, never as markup.
DEDICATION = "For Sam <img src=x onerror=alert(1)>"


@pytest.fixture
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


def person(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Amsterdam")
    context.set_default_timeout(8_000)
    return context


def test_a_listener_requests_a_song_and_the_host_queues_it(
    chromium: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    host_context, fan_context, other_context = person(chromium), person(chromium), person(chromium)
    host, fan, other = host_context.new_page(), fan_context.new_page(), other_context.new_page()
    host_errors, fan_errors = watch_for_errors(host), watch_for_errors(fan)

    sign_up(host, base, "request_host", "Request Host")
    show_id = host.request.post(f"{base}/api/v1/shows", data={"title": "Your Requests"}).json()[
        "id"
    ]

    # A visitor who has not signed in is asked to.
    fan.goto(f"{base}/shows/{show_id}")
    panel = fan.locator("[data-song-requests]")
    expect(panel.get_by_role("link", name="Sign in")).to_be_visible()

    # Signed in, the listener searches as they type and picks the song with the keyboard.
    sign_up(fan, base, "big_fan", "Big Fan")
    fan.reload()
    expect(panel.get_by_role("heading", name="Request a song")).to_be_visible()
    expect(panel.locator("[data-my-requests-empty]")).to_be_visible()
    panel.get_by_label("Dedication").fill(DEDICATION)
    search = panel.get_by_label("Find a song to request")
    search.fill("neon")
    results = panel.locator("[data-request-results]")
    expect(results.get_by_text("Neon Drive", exact=True)).to_be_visible()
    expect(results.get_by_text("Neon Paper")).to_have_count(0)  # metadata only: not requestable
    search.fill("harbour")
    expect(results.get_by_text(SONG, exact=True)).to_be_visible()
    expect(results.locator("li")).to_have_count(1)
    search.press("ArrowDown")
    button = results.get_by_role("button", name=f"Request {SONG}")
    expect(button).to_be_focused()
    fan.keyboard.press("Enter")
    expect(panel.locator("[data-request-status]")).to_have_text(
        f"You asked for “{SONG}”. The host will see it."
    )
    mine = panel.locator("[data-my-requests] li")
    expect(mine).to_have_count(1)
    expect(mine.locator(".my-request-song")).to_have_text(f"{SONG} — The Quay Band")
    expect(mine.locator(".my-request-dedication")).to_have_text(f"“{DEDICATION}”")
    expect(mine.locator(".chip")).to_have_text("Waiting for the host")
    expect(panel.get_by_label("Dedication")).to_have_value("")
    panel.screenshot(path="/tmp/song-requests-listener.png")

    # A second listener asks for the same song (through the API this time).
    sign_up(other, base, "second_fan", "Second Fan")
    song_id = int(results.locator("li").get_attribute("data-track-id") or 0)
    r = other.request.post(f"{base}/api/v1/shows/{show_id}/requests", data={"track_id": song_id})
    assert r.status == 201, r.text()

    # The host's console: one song, asked for twice, with the dedication as typed.
    host.goto(f"{base}/shows/{show_id}/console")
    requests = host.locator("[data-request-queue]")
    group = requests.locator("[data-request-groups] li.request-group", has_text=SONG)
    expect(group).to_have_attribute("data-count", "2")
    expect(group.locator("[data-request-count-text]")).to_have_text("2 requests")
    expect(group.locator(".request-count")).to_have_text("\N{MULTIPLICATION SIGN}2")
    expect(group.locator(".request-dedication")).to_have_text(f"“{DEDICATION}”")
    expect(group.locator(".request-who")).to_have_text("Big Fan (@big_fan)")
    expect(group.locator(".request-also")).to_contain_text("Second Fan (@second_fan)")
    expect(requests.locator("[data-request-summary]")).to_have_text("2 open requests · 1 song")
    assert queue_titles(host) == []
    requests.screenshot(path="/tmp/song-requests-console.png")
    shoot(host, artifacts, "console-song-requests")

    # Another request arrives while the console is open: the room tells the crew at once.
    neon = other.request.get(f"{base}/api/v1/catalog/search", params={"q": "neon drive"}).json()
    r = other.request.post(
        f"{base}/api/v1/shows/{show_id}/requests", data={"track_id": neon["tracks"][0]["id"]}
    )
    assert r.status == 201, r.text()
    expect(requests.locator("[data-request-summary]")).to_have_text("3 open requests · 2 songs")
    titles = requests.locator("[data-request-groups] .track-title")
    expect(titles).to_have_text([SONG, "Neon Drive"])  # most asked for first

    # One click puts it on the queue and answers both its requests.
    requests.get_by_role("button", name=f"Add to queue: {SONG}").click()
    expect(titles).to_have_text(["Neon Drive"])
    expect(requests.locator("[data-request-queue-status]")).to_have_text(
        f"Added {SONG} to the queue, asked for by 2 listeners."
    )
    expect(requests.get_by_role("button", name="Add to queue: Neon Drive")).to_be_focused()
    queue = host.request.get(f"{base}/api/v1/shows/{show_id}/queue").json()
    assert [i["track"]["title"] for i in queue["upcoming"]] == [SONG]

    # The listener hears it from the room, on the page as it is.
    expect(mine.locator(".chip")).to_have_text("The host picked it")
    expect(panel.locator("[data-request-status]")).to_have_text(
        f"The host picked your request, “{SONG}”."
    )
    expect(mine.get_by_role("button", name=f"Withdraw your request for {SONG}")).to_have_count(0)
    shoot(fan, artifacts, "show-song-requests")

    # Dismissing answers the rest without touching the queue.
    requests.get_by_role("button", name="Dismiss: Neon Drive").click()
    expect(requests.locator("[data-request-summary]")).to_have_text("No requests yet.")
    expect(requests.locator("[data-request-groups] li")).to_have_count(0)
    # console.js draws the queue from its own calls; loaded again, the page shows the song.
    host.reload()
    expect(host.locator("[data-queue] li")).to_have_count(1)
    assert queue_titles(host) == [SONG]

    assert host_errors == [] and fan_errors == []
    for context in (host_context, fan_context, other_context):
        context.close()
