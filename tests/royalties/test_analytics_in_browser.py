"""The host's analytics page in Debian's Chromium: reached from the show page with the keyboard,
the numbers and the plot readable at 1280x800 and 390x844 (screenshots in tests/artifacts),
nothing wider than the phone, no script error or CSP refusal."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from onair.db.base import make_engine, make_sessionmaker
from tests.e2e.conftest import LiveServer, artifacts, browser, live_server, playwright  # noqa: F401
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import DESKTOP, PHONE, watch_for_errors
from tests.royalties import world

pytestmark = pytest.mark.e2e


def _seed(server: LiveServer, host_id: int) -> world.World:
    async def work() -> world.World:
        engine = make_engine(server.settings.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                return await world.build(db, host_id)
        finally:
            await engine.dispose()

    # Playwright's sync API keeps a loop running on this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()


def test_the_host_reads_the_analytics_of_a_show(
    browser: BrowserContext,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    base = live_server.url
    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, base, "stats_host", "Stats Host")
    host_id = page.request.get(f"{base}/api/v1/accounts/me").json()["id"]
    built = _seed(live_server, host_id)
    show_id = built.shows["A"]

    page.goto(f"{base}/shows/{show_id}")
    link = page.get_by_role("link", name="Listeners, songs and chat: the show's analytics")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/shows/{show_id}/analytics")
    expect(page.get_by_role("heading", name="Show analytics", level=1)).to_be_visible()
    expect(page.locator('[data-stat="peak"]')).to_have_text("4")
    expect(page.locator('[data-stat="hours"]')).to_have_text("10.00")
    expect(page.locator('[data-stat="average"]')).to_have_text("3.3")
    expect(page.locator('[data-stat="reactions"]')).to_have_text("7")
    plot = page.get_by_role("img", name="Listeners over time")
    expect(plot).to_be_visible()
    expect(page.locator('[data-transport="smart_speaker"] [data-peak]')).to_have_text("1")
    expect(page.locator("[data-setlist] tbody tr")).to_have_count(8)

    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(artifacts / f"analytics-{label}.png"), full_page=True)
        box = plot.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"], (label, box)
        # The axis labels stay legible however far the drawing shrinks.
        tick = page.locator(".plot-tick").first.bounding_box()
        assert tick is not None and tick["height"] >= 11, (label, tick)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= size["width"], f"{label}: the page is {wide}px wide"
    # The tables scroll within themselves on a phone; their links stay keyboard-reachable.
    song = page.locator("[data-setlist] a").first
    song.focus()
    expect(song).to_be_focused()
    assert errors == []
