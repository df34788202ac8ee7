"""The host in Chromium: a clean show made on the new-show page, and the console telling which
songs cannot be queued (explicit, not licensed in Canada) and which would break a programming
rule, before and after they are queued, all by keyboard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from onair.app import create_app
from onair.catalog.service import CatalogWriter, LicenceTerms, TrackInput
from onair.clock import SystemClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.e2e.conftest import artifacts, browser, playwright, tone
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import queue_titles, shoot, watch_for_errors
from tests.server import serve

pytestmark = pytest.mark.e2e
__all__ = ["artifacts", "browser", "playwright"]  # the e2e fixtures, used here

# Markup in a title must show as typed.
ODD_TITLE = "Blue <b>4</b>"


async def _seed(url: str, audio: Path) -> None:
    engine = make_engine(url)
    songs = [
        *(
            TrackInput(
                source="test",
                source_key=f"blue:{i}",
                title=ODD_TITLE if i == 4 else f"Blue {i}",
                artists=(f"Singer {i}",),
                album="Blue Album",
                album_artist="Various",
                duration_s=200.0,
                audio_path=str(audio),
            )
            for i in range(1, 5)
        ),
        TrackInput(
            source="test",
            source_key="rude",
            title="Rude Words",
            artists=("Potty Mouth",),
            explicit=True,
            duration_s=180.0,
            audio_path=str(audio),
        ),
        TrackInput(
            source="test",
            source_key="us",
            title="Stars And Stripes",
            artists=("Yankee Band",),
            duration_s=180.0,
            audio_path=str(audio),
            licence=LicenceTerms(territories=("US",)),
        ),
    ]
    async with make_sessionmaker(engine)() as db:
        await CatalogWriter(db, SystemClock()).write(songs)
        await db.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("licensing-e2e")
    settings = Settings(data_dir=data / "var", territories="US,CA")
    settings.data_dir.mkdir(parents=True)
    audio = data / "tone.wav"
    tone(audio)

    def prepare() -> None:
        upgrade(settings.resolved_database_url)
        asyncio.run(_seed(settings.resolved_database_url, audio))

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(prepare).result()
    with serve(create_app(settings)) as running:
        yield running.url


def search(page: Page, words: str) -> None:
    box = page.get_by_label("Search playable songs")
    box.focus()
    box.fill(words)
    expect(page.locator("[data-catalog-results] li").first).to_be_visible()


def result(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("[data-catalog-results] li").filter(
        has=page.locator(".track-title", has_text=title)
    )


def test_the_console_says_what_cannot_be_queued_and_what_breaks_a_rule(
    browser: BrowserContext, server_url: str, artifacts: Path
) -> None:
    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, server_url, "clean_host", "Clean Host")

    page.goto(f"{server_url}/shows/new")
    page.get_by_label("Title").fill("Family Hour")
    page.get_by_label("Title").press("Tab")
    clean = page.get_by_label("Clean show")
    clean.focus()
    page.keyboard.press("Space")
    expect(clean).to_be_checked()
    shoot(page, artifacts, "licensing-new-show")
    page.get_by_role("button", name="Create show").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/console")
    expect(page.get_by_label("Clean show")).to_be_checked()

    search(page, "rude")
    row = result(page, "Rude Words")
    expect(row.locator(".problem.blocking")).to_contain_text(
        "Can't play: it has explicit lyrics and this show is marked clean"
    )
    expect(
        row.get_by_role("button", name="Can't add Rude Words: see why below it")
    ).to_be_disabled()

    search(page, "stars")
    row = result(page, "Stars And Stripes")
    expect(row.locator(".problem.blocking")).to_contain_text("not licensed in Canada (CA)")

    for n in (1, 2):
        search(page, f"blue {n}")
        result(page, f"Blue {n}").get_by_role("button", name=f"Add Blue {n} to the queue").press(
            "Enter"
        )
        expect(page.locator("[data-queue] li")).to_have_count(n)
    search(page, "blue")
    third = result(page, "Blue 3")
    expect(third.locator(".problem.warning")).to_contain_text(
        "Rule: the 3rd song from the album 'Blue Album' in a row (dmca rules allow 2 in a row)"
    )
    shoot(page, artifacts, "licensing-console-search")
    # A warning does not stop the host (warn mode): queued, the song keeps its mark.
    third.get_by_role("button", name="Add Blue 3 to the queue").press("Enter")
    expect(page.locator("[data-queue] li")).to_have_count(3)
    queued = page.locator("[data-queue] li").nth(2)
    expect(queued.locator(".problem.warning")).to_contain_text("3rd song from the album")
    page.reload()  # the server-side render says the same
    expect(page.locator("[data-queue] li").nth(2).locator(".problem.warning")).to_contain_text(
        "3rd song from the album"
    )
    assert queue_titles(page) == ["Blue 1", "Blue 2", "Blue 3"]
    search(page, "blue 4")
    expect(result(page, ODD_TITLE).locator(".track-title")).to_have_text(ODD_TITLE)
    expect(result(page, ODD_TITLE).locator(".problem.warning").first).to_contain_text(
        "4th song from the album"
    )
    shoot(page, artifacts, "licensing-console-queue")
    assert errors == []


def test_a_listener_abroad_is_told_on_the_show_page_and_can_say_where_they_are(
    browser: BrowserContext, server_url: str, artifacts: Path
) -> None:
    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, server_url, "abroad_host", "Abroad Host")
    show_id = page.request.post(f"{server_url}/api/v1/shows", data={"title": "Far Away"}).json()[
        "id"
    ]
    assert page.request.post(f"{server_url}/api/v1/shows/{show_id}/live").ok
    page.request.post(f"{server_url}/api/v1/accounts/logout")
    sign_up(page, server_url, "expat", "Expat")
    r = page.request.put(f"{server_url}/api/v1/territory", data={"territory": "DE"})
    assert r.ok, r.text()

    page.goto(f"{server_url}/shows/{show_id}")
    block = page.locator("[data-territory-block]")
    expect(block).to_contain_text("Not available where you are")
    expect(block).to_contain_text("licensed for United States of America, Canada only")
    expect(block).to_contain_text("your account says you are in Germany")
    expect(page.locator("[data-listen-button]")).to_be_disabled()
    assert page.request.get(f"{server_url}/listen/{show_id}.m3u").status == 451
    shoot(page, artifacts, "licensing-show-abroad")
    # Following a stream link gives the page, with status 451.
    response = page.goto(f"{server_url}/listen/{show_id}.m3u")
    assert response is not None and response.status == 451
    expect(page.get_by_role("heading", name="Not available where you are")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Germany (DE)")
    shoot(page, artifacts, "licensing-451")
    page.get_by_role("link", name="Back to the home page").press("Enter")
    page.wait_for_url(f"{server_url}/")
    page.goto(f"{server_url}/shows/{show_id}")

    choice = page.get_by_label("I am in")
    choice.focus()
    choice.select_option("CA")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Save
    expect(block).to_have_count(0)
    expect(page.locator("[data-listen-button]")).to_be_enabled()
    assert page.request.get(f"{server_url}/listen/{show_id}.m3u").status == 200
    page.request.post(f"{server_url}/api/v1/accounts/logout")
    assert errors == []
