"""A host records a show, publishes its talk replay from the show page and unpublishes it; a
listener plays it there and finds it (and the podcast feed) on the host's page.

The host's Chromium talks through a fake 1 kHz microphone. The catalog is empty when the show
goes live (so the auto-DJ has nothing and the show opens with talk); then one short song,
licensed for webcasting but not on demand, arrives and the host queues it from the console. The
talk replay is possible, the full one is offered disabled, with the song named."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from onair.app import create_app
from onair.db.migrate import upgrade
from onair.settings import Settings
from tests.e2e.conftest import LiveServer
from tests.e2e.test_host_flow import shoot, watch_for_errors
from tests.e2e.test_live_in_browser import MEDIA_TIMEOUT_MS, new_context
from tests.live import seed_songs, write_song
from tests.server import serve

pytestmark = pytest.mark.e2e

SONG = "Short Interlude"


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """OnAir over an empty catalog (no auto-DJ); `add_song` fills it later."""
    data = tmp_path_factory.mktemp("onair-replays")
    settings = Settings(data_dir=data / "var", recording_segment_s=5.0)
    settings.data_dir.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, settings.resolved_database_url).result()
    with serve(create_app(settings)) as running:
        yield LiveServer(url=running.url, settings=settings)


def add_song(server: LiveServer) -> None:
    song = server.settings.data_dir / "interlude.flac"
    write_song(song, 440.0, 4.0, 0.3)
    seed = seed_songs(server.settings.resolved_database_url, [(song, SONG)])
    # Off the test's thread: sync Playwright keeps an event loop running on it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, seed).result()


def test_a_host_publishes_a_talk_replay_and_a_listener_plays_it(
    media_browser: Browser, quiet_server: LiveServer, artifacts: Path
) -> None:
    base = quiet_server.url
    host = new_context(media_browser).new_page()
    listener = new_context(media_browser).new_page()
    host_errors, listener_errors = watch_for_errors(host), watch_for_errors(listener)

    host.goto(base + "/signup")
    host.get_by_label("Username").fill("dj_replay")
    host.get_by_label("Email").fill("replay@example.org")
    host.get_by_label("Display name").fill("DJ <Replay> & Co")
    host.get_by_label("Password").fill("a long enough password")
    host.get_by_role("button", name="Sign up").click()
    host.wait_for_url(base + "/")
    host.get_by_role("link", name="New show").click()
    host.get_by_label("Title").fill("Late <Night> Talk")
    host.get_by_role("button", name="Create show").click()
    host.wait_for_url("**/shows/*/console")
    show_id = host.url.rstrip("/").split("/")[-2]

    host.get_by_role("button", name="Go live").click()
    studio = host.locator("[data-studio]")
    expect(studio).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)
    host.wait_for_timeout(4_000)  # the host talks
    add_song(quiet_server)
    host.get_by_label("Search playable songs").fill("interlude")
    host.get_by_role("button", name=f"Add {SONG} to the queue").click()
    expect(host.locator("[data-studio-now]")).to_contain_text(SONG)
    host.wait_for_timeout(8_000)  # the song, then more talk
    end = host.get_by_role("button", name="End show")
    end.click()
    host.get_by_role("button", name="Press again to end").click()
    expect(host.locator("[data-status-badge]")).to_have_text("Ended")

    # The console points the host to the show's page, which offers a talk replay; the full one
    # is ruled out, and why.
    host.get_by_role("link", name="publish a replay").click()
    host.wait_for_url(f"{base}/shows/{show_id}#replays")
    replays = host.locator("[data-replays]")
    expect(replays.get_by_role("heading", name="Replays")).to_be_visible()
    full = replays.get_by_role("button", name="Publish full replay")
    expect(full).to_be_disabled()
    expect(host.locator("#full-hint")).to_contain_text("not licensed for on-demand play")
    expect(host.locator("#full-hint")).to_contain_text(SONG)
    talk = replays.get_by_role("button", name="Publish talk replay")
    shoot(host, artifacts, "replay-publish")
    talk.focus()
    host.keyboard.press("Enter")

    # Processing, then ready: the page watches and reloads itself.
    player = host.locator("[data-replay-audio]")
    expect(player).to_be_visible(timeout=30_000)
    title = "Late <Night> Talk (talk)"
    expect(replays.get_by_role("heading", name="Talk replay")).to_be_visible()
    chapters = replays.get_by_role("list", name=f"Chapters of {title}")
    expect(chapters.get_by_role("listitem")).to_have_count(2)
    expect(chapters.get_by_role("listitem").first).to_contain_text("0:00 Opening")
    expect(chapters.get_by_role("listitem").last).to_contain_text(f"After Test Tones - {SONG}")
    expect(replays.get_by_role("button", name="Publish talk replay")).to_have_count(0)
    duration = host.evaluate(
        """async () => {
            const audio = document.querySelector("[data-replay-audio]");
            if (!(audio.duration > 0)) {
                await new Promise((ok) => audio.addEventListener("loadedmetadata", ok));
            }
            return audio.duration;
        }"""
    )
    assert 4.0 < duration < 15.0, f"the browser reads a replay of {duration} s"
    shoot(host, artifacts, "replay-ready-host")

    # A listener, not signed in: the player and chapters, no host controls.
    listener.goto(f"{base}/shows/{show_id}")
    expect(listener.locator("[data-replay-audio]")).to_be_visible()
    expect(listener.get_by_role("button", name="Unpublish")).to_have_count(0)
    expect(listener.get_by_role("button", name="Publish talk replay")).to_have_count(0)
    seek = listener.locator("[data-seek]").first
    seek.focus()
    listener.keyboard.press("Enter")
    shoot(listener, artifacts, "replay-show-page")

    # The host's page lists it and announces the podcast feed.
    listener.goto(f"{base}/users/dj_replay")
    shelf = listener.locator("#replays")
    expect(shelf.get_by_role("link", name=title)).to_be_visible()
    feed = listener.locator('link[rel="alternate"][type="application/rss+xml"]')
    href = feed.get_attribute("href")
    assert href is not None and href.endswith("/podcast.xml")
    assert feed.get_attribute("title") == "DJ <Replay> & Co on OnAir"
    rss = listener.request.get(base + href)
    assert rss.ok and "Late &lt;Night&gt; Talk (talk)" in rss.text()
    shoot(listener, artifacts, "replay-host-page")

    # The host unpublishes: the publish button comes back and the feed is empty.
    host.get_by_role("button", name="Unpublish").click()
    expect(host.get_by_role("button", name="Publish talk replay")).to_be_visible()
    expect(host.locator("[data-replay-audio]")).to_have_count(0)
    assert "<item>" not in listener.request.get(base + href).text()
    assert host_errors == [] and listener_errors == []
