"""The one search box in a real browser: typed into from the header and refined as you type,
grouped results with the live show playing the song first, followed with the keyboard; the
song and artist pages; and the same results without JavaScript. Screenshots at phone and
desktop sizes go to tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Playwright, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LIVE_ARTIST, LIVE_SONG, LiveServer
from tests.e2e.test_host_flow import shoot, watch_for_errors

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def on_air(live_server: LiveServer) -> Iterator[dict[str, int]]:
    """A live show playing Concert A for real, and an upcoming show about harbours."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        r = http.post(
            "/api/v1/accounts/signup",
            json={"username": "dj_tide", "email": "tide@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        upcoming = http.post(
            "/api/v1/shows",
            json={"title": "Harbour Breakfast", "hashtags": ["harbour", "coffee"]},
        ).json()
        live = http.post(
            "/api/v1/shows", json={"title": "Tide Tables <live>", "hashtags": ["harbour"]}
        ).json()
        found = http.get("/api/v1/catalog/search", params={"q": LIVE_SONG}).json()["tracks"]
        song = found[0]["id"]
        r = http.post(f"/api/v1/shows/{live['id']}/queue", json={"track_id": song})
        assert r.status_code == 201, r.text
        assert http.post(f"/api/v1/shows/{live['id']}/live").status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until the song is heard (the play log has it)
            plays = http.get(f"/api/v1/catalog/tracks/{song}/plays").json()
            if plays["playing_now"]:
                break
            time.sleep(0.2)
        assert plays["playing_now"], "the live show never started playing the song"
        yield {"live": live["id"], "upcoming": upcoming["id"], "song": song}
        http.post(f"/api/v1/shows/{live['id']}/end")


def test_searching_as_you_type_and_following_a_result_with_the_keyboard(
    browser: BrowserContext, live_server: LiveServer, on_air: dict[str, int], artifacts: Path
) -> None:
    page = browser.new_page()
    errors = watch_for_errors(page)
    page.goto(live_server.url + "/")

    # The header's box sends a plain GET to /search, answered by the server.
    # (Its label says only "Search OnAir", so it is not taken for a form's "Hashtags" field.)
    page.get_by_role("searchbox", name="Search OnAir").fill("harb")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/search?q=harb")
    shows = page.locator("[data-group=shows] .hit-title")
    # The live show first, then the upcoming one; the title is text, not markup.
    expect(shows).to_have_text(["Tide Tables <live>", "Harbour Breakfast"])
    expect(page.locator("[data-group=hashtags] .hit-title")).to_have_text(["#harbour"])
    expect(page.locator("[data-group=songs] .hit-title")).to_have_text(["Harbour Lights"])
    shoot(page, artifacts, "search-grouped")

    # As you type, with a typo: the song on air, who plays it now, first.
    box = page.get_by_label("Shows, hosts, hashtags, artists and songs")
    box.fill("concrt")
    groups = page.locator("[data-group]")
    expect(groups.first).to_have_attribute("data-group", "playing-now")
    playing = page.locator("[data-group=playing-now] .hit")
    expect(playing).to_have_count(1)
    expect(playing.locator(".hit-title")).to_have_text("Tide Tables <live>")
    expect(playing.locator(".hit-when")).to_contain_text(f"Playing “{LIVE_SONG}” by {LIVE_ARTIST}")
    expect(page.locator("[data-group=songs] .hit-title")).to_have_text([LIVE_SONG])
    expect(page).to_have_url(f"{live_server.url}/search?q=concrt")
    box.fill("harbour b")  # a show as the script draws it, as the server did
    expect(shows).to_have_text(["Harbour Breakfast"])
    expect(page.locator("[data-group=shows] .hit-when")).to_have_text(
        "Starts when the host goes live"
    )
    box.fill("concrt")
    expect(playing.locator(".hit-title")).to_have_text("Tide Tables <live>")
    shoot(page, artifacts, "search-playing-now")

    # The arrow keys walk the results from the box; Enter follows the link.
    box.press("ArrowDown")
    expect(playing.locator("a")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("[data-group=songs] a").first).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(box).to_be_focused()
    box.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/shows/{on_air['live']}")

    # The song's page and the artist's page say who is playing them now.
    page.goto(f"{live_server.url}/search?q={LIVE_ARTIST}")
    artist = page.locator("[data-group=artists] a").first
    expect(artist).to_have_text(f"{LIVE_ARTIST}Artist")
    artist.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(LIVE_ARTIST)
    expect(page.locator("#playing-now .hit-title")).to_have_text(["Tide Tables <live>"])
    shoot(page, artifacts, "search-artist")
    page.locator(".hit-song a", has_text=LIVE_SONG).click()
    expect(page).to_have_url(f"{live_server.url}/tracks/{on_air['song']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(LIVE_SONG)
    expect(page.locator("#playing-now .hit-title")).to_have_text(["Tide Tables <live>"])
    shoot(page, artifacts, "search-song")

    # Nothing found says so.
    page.goto(live_server.url + "/search")
    page.get_by_label("Shows, hosts, hashtags, artists and songs").fill("zzxqv")
    expect(page.locator("[data-search-status]")).to_have_text("Nothing matches “zzxqv”.")
    expect(page.locator("[data-group]")).to_have_count(0)
    shoot(page, artifacts, "search-nothing")
    assert errors == []


def test_the_search_page_works_without_javascript(
    playwright: Playwright, live_server: LiveServer, on_air: dict[str, int]
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no Chromium")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(live_server.url + "/search")
        page.get_by_label("Shows, hosts, hashtags, artists and songs").fill("concert a")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page).to_have_url(f"{live_server.url}/search?q=concert+a")
        expect(page.locator("[data-group=playing-now] .hit-title")).to_have_text(
            ["Tide Tables <live>"]
        )
        expect(page.locator("[data-group=songs] .hit-title")).to_have_text([LIVE_SONG])
    finally:
        browser.close()
