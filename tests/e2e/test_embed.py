"""The embeddable player on another site: a page served from another origin (another host name
and port) frames /embed/{id} of a live show; a listener reaches the Listen button with the
keyboard alone, hears the show (the audio element plays and its clock advances, WebRTC's own
statistics see packets and sound), stops it again, and sees the show end."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, FrameLocator, Page, expect

from tests.e2e.conftest import LIVE_ARTIST, LIVE_SONG, LiveServer
from tests.e2e.test_host_flow import DESKTOP, PHONE, watch_for_errors

pytestmark = pytest.mark.e2e

MEDIA_TIMEOUT_MS = 15_000


@pytest.fixture
def live_show(live_server: LiveServer) -> Iterator[tuple[int, httpx.Client]]:
    """A show on air playing the 440 Hz song, started over the API by its host."""
    http = httpx.Client(base_url=live_server.url, timeout=30)
    r = http.post(
        "/api/v1/accounts/signup",
        json={"username": "embed_host", "email": "embed@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    show = http.post("/api/v1/shows", json={"title": "Tuning Fork <FM> & Friends"}).json()
    track = http.get("/api/v1/catalog/search", params={"q": LIVE_SONG}).json()["tracks"][0]
    assert http.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": track["id"]}).is_success
    assert http.post(f"/api/v1/shows/{show['id']}/live").status_code == 200
    try:
        yield int(show["id"]), http
    finally:
        http.post(f"/api/v1/shows/{show['id']}/end")
        http.close()


@dataclass
class Blog:
    """A site on another origin: `page` is what it serves at every path."""

    url: str
    page: bytes = b""


@pytest.fixture
def other_site() -> Iterator[Blog]:
    # "localhost" and another port: another site, not only another origin.
    blog = Blog(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(blog.page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    blog.url = f"http://localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield blog
    finally:
        server.shutdown()
        server.server_close()


def _blog(live_server: LiveServer, show_id: int) -> bytes:
    snippet = httpx.get(
        f"{live_server.url}/oembed",
        params={"url": f"{live_server.url}/shows/{show_id}", "format": "json"},
    ).json()["html"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>A radio blog</title></head><body style='font-family:sans-serif;margin:16px'>"
        "<h1>My favourite show</h1><p>Listen right here:</p>"
        f"{snippet}<p>Thanks for reading.</p></body></html>"
    ).encode()


def _player(page: Page) -> FrameLocator:
    return page.frame_locator("iframe")


def test_the_player_plays_in_a_page_of_another_site(
    browser: BrowserContext,
    live_server: LiveServer,
    live_show: tuple[int, httpx.Client],
    other_site: Blog,
    artifacts: Path,
) -> None:
    show_id, host = live_show
    other_site.page = _blog(live_server, show_id)
    page = browser.new_page()
    errors = watch_for_errors(page)
    page.goto(other_site.url + "/")
    player = _player(page)
    panel = player.locator("[data-listen]")
    expect(player.locator("[data-embed-title]")).to_have_text("Tuning Fork <FM> & Friends")
    expect(player.locator("[data-status-badge]")).to_have_text("Live")
    expect(player.locator("[data-embed-now]")).to_contain_text(LIVE_SONG, timeout=8_000)
    expect(player.locator("[data-embed-now]")).to_contain_text(LIVE_ARTIST)

    expect(player.locator("[data-embed]")).to_have_attribute("data-ready", "yes")

    # Keyboard only: the first Tab enters the frame at its Listen button; Enter plays.
    page.keyboard.press("Tab")
    listen = player.get_by_role("button", name="Listen")
    expect(listen).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_have_attribute("data-receiving", "yes", timeout=MEDIA_TIMEOUT_MS)
    expect(player.get_by_role("button", name="Stop")).to_have_attribute("aria-pressed", "true")
    audio = player.locator("[data-player]")
    first = audio.evaluate("a => a.currentTime")
    page.wait_for_timeout(1_200)
    assert audio.evaluate("a => !a.paused && a.srcObject !== null")
    assert audio.evaluate("a => a.currentTime") - first > 0.8  # the clock runs: it plays
    # Really another origin: the blog's own script cannot look inside the player.
    assert page.evaluate("() => document.querySelector('iframe').contentDocument === null")
    expect(panel).not_to_have_attribute("data-audio-level", "0")

    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(artifacts / f"embed-on-another-site-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    # Space on the focused button stops it again.
    expect(player.get_by_role("button", name="Stop")).to_be_focused()
    page.keyboard.press("Space")
    expect(player.get_by_role("button", name="Listen")).to_have_attribute("aria-pressed", "false")
    assert audio.evaluate("a => a.paused && a.srcObject === null")

    # The host ends the show: the player says so and its button is off.
    assert host.post(f"/api/v1/shows/{show_id}/end").status_code == 200
    expect(player.locator("[data-embed-now]")).to_have_text(
        "This show has ended. Thanks for listening!"
    )
    expect(player.get_by_role("button", name="Listen")).to_be_disabled()
    assert errors == []


def test_the_show_page_shares_the_player(
    browser: BrowserContext, live_server: LiveServer, artifacts: Path
) -> None:
    http = httpx.Client(base_url=live_server.url, timeout=30)
    http.post(
        "/api/v1/accounts/signup",
        json={"username": "share_host", "email": "share@example.org", "password": "password-1"},
    )
    show_id = http.post("/api/v1/shows", json={"title": "Shared Hour"}).json()["id"]
    http.close()
    page = browser.new_page()
    errors = watch_for_errors(page)
    page.goto(f"{live_server.url}/shows/{show_id}")
    oembed = page.locator('link[rel="alternate"][type="application/json+oembed"]')
    query = parse_qs(urlsplit(str(oembed.get_attribute("href"))).query)
    assert query["url"] == [f"{live_server.url}/shows/{show_id}"]

    share = page.locator("[data-share]")
    summary = share.get_by_text("Share / embed")
    summary.focus()
    page.keyboard.press("Enter")
    expect(share).to_have_attribute("open", "")
    code = page.get_by_label("Put the player on your website: paste this HTML")
    expect(code).to_have_value(re.compile(rf'^<iframe src="{live_server.url}/embed/{show_id}"'))
    share.get_by_role("button", name="Copy code").click()
    expect(share.locator("[data-share-said]")).to_have_text(re.compile(r"^(Copied|Selected)"))
    assert code.evaluate("c => c.selectionEnd - c.selectionStart") == len(code.input_value())
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        share.screenshot(path=str(artifacts / f"show-share-embed-{label}.png"))
    assert errors == []
