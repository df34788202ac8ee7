"""Browsing in a real browser with the keyboard only: home (live now by listeners, trending
hashtags, genres) → a genre (ranked by what the shows really play, labelled) → a hashtag.
Screenshots of each page at phone and desktop sizes go to tests/artifacts/."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from onair.accounts.models import User
from onair.catalog.models import Track
from onair.clock import SystemClock
from onair.db.base import make_engine, make_sessionmaker
from onair.shows import service as shows
from onair.shows.browse.service import save_listeners
from tests.discovery.browse_world import live_show, play
from tests.e2e.conftest import LiveServer
from tests.e2e.test_host_flow import shoot, watch_for_errors

pytestmark = pytest.mark.e2e


async def _seed(url: str) -> None:
    """Three live shows that played from the e2e catalog, listeners as studios write them,
    and one show coming up."""
    clock = SystemClock()
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            song = {t.title: t.id for t in await db.scalars(select(Track))}
            ago = datetime.now(UTC) - timedelta(minutes=20)
            late = await live_show(db, clock, "mona", "Late Jazz", "Jazz", ["latenight", "jazz"])
            await play(db, late.id, song["Harbour Lights"], 214.0, ago)
            await play(db, late.id, song["Neon Drive"], 30.0, ago + timedelta(seconds=214))
            await save_listeners(db, late.id, 4)
            fake = await live_show(db, clock, "otto", "Not So Jazz", "Jazz", ["latenight"])
            await play(db, fake.id, song["Neon Drive"], 187.0, ago, listeners=2)
            await play(db, fake.id, song["Sugar Plum Dance"], 300.0, ago, listeners=2)
            await save_listeners(db, fake.id, 2)
            synth = await live_show(db, clock, "pia", "Synth Hour", "Electronic", ["synth"])
            await play(db, synth.id, song["Sugar Plum Dance"], 330.0, ago, listeners=11)
            await save_listeners(db, synth.id, 11)
            host = await db.scalar(select(User).where(User.username == "mona"))
            assert host is not None
            await shows.create_show(
                db,
                clock,
                host,
                shows.ShowFields(
                    title="Tomorrow's Jazz",
                    genre="Jazz",
                    hashtags=["latenight"],
                    scheduled_start=datetime.now(UTC) + timedelta(days=1),
                ),
            )
            await db.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def browse_server(live_server: LiveServer) -> LiveServer:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _seed(live_server.settings.resolved_database_url)).result()
    return live_server


def tab_to(page: Page, selector: str, text: str | None = None, limit: int = 120) -> None:
    """Presses Tab until the element matching `selector` (and saying `text`) has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        there = page.evaluate(
            """([s, text]) => {
                const el = document.activeElement;
                return !!el && el.matches(s) && (text === null || el.textContent.trim() === text);
            }""",
            [selector, text],
        )
        if there:
            return
    raise AssertionError(f"Tab never reached {selector} {text or ''}")


def focus_ring(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))


def test_browse_home_genre_hashtag_with_the_keyboard(
    browser: BrowserContext, browse_server: LiveServer, artifacts: Path
) -> None:
    page = browser.new_page()
    errors = watch_for_errors(page)
    page.goto(browse_server.url + "/")

    live = page.locator("#live .show-card")
    expect(live).to_have_count(3)
    # Most listened first, each with its count.
    expect(live.locator(".card-title")).to_have_text(["Synth Hour", "Late Jazz", "Not So Jazz"])
    expect(live.nth(0).locator(".listeners")).to_have_text("11 listening")
    expect(live.nth(2).locator(".match > [aria-hidden]")).to_have_text("Mostly plays Electronic")
    trending = page.locator("#trending .chip")
    expect(trending.first).to_contain_text("#synth")
    expect(page.locator("#upcoming .card-title")).to_have_text(["Tomorrow's Jazz"])
    shoot(page, artifacts, "browse-home")

    # Home → Jazz with the keyboard.
    tab_to(page, '#genres a[href="/genres/jazz"]')
    assert focus_ring(page) != "none"
    page.keyboard.press("Enter")
    expect(page).to_have_url(browse_server.url + "/genres/jazz")
    expect(page.get_by_role("heading", level=1)).to_have_text("Jazz")
    ranked = page.locator("#live .show-card")
    expect(ranked.locator(".card-title")).to_have_text(["Late Jazz", "Not So Jazz"])
    expect(ranked.nth(0).locator(".match > [aria-hidden]")).to_have_text("88 % Jazz")
    expect(ranked.nth(1).locator(".match > [aria-hidden]")).to_have_text("Mostly plays Electronic")
    shoot(page, artifacts, "browse-genre")

    # Jazz → #latenight from a card's hashtag, with the keyboard.
    tab_to(page, '#live a[href="/hashtags/latenight"]')
    assert focus_ring(page) != "none"
    page.keyboard.press("Enter")
    expect(page).to_have_url(browse_server.url + "/hashtags/latenight")
    expect(page.get_by_role("heading", level=1)).to_have_text("#latenight")
    expect(page.locator("[data-hashtag-summary]")).to_contain_text("3 shows, 2 live now")
    expect(page.locator("#live .card-title")).to_have_text(["Late Jazz", "Not So Jazz"])
    expect(page.locator("#upcoming .card-title")).to_have_text(["Tomorrow's Jazz"])
    shoot(page, artifacts, "browse-hashtag")

    # And the show far off its genre says so on its page.
    tab_to(page, "#live .card-title a", "Not So Jazz")
    page.keyboard.press("Enter")
    expect(page.locator("[data-genre-match]")).to_contain_text("Mostly plays Electronic")
    shoot(page, artifacts, "browse-show")
    assert errors == []
