"""A live show in two real browsers: a host goes live and talks over a song, a listener hears it.

The host's Chromium has a fake microphone playing a 1 kHz tone; the listener's profile is a
separate one, not signed in. What the listener's page reports about the audio comes from its
own RTCPeerConnection statistics, which the page exposes as data attributes for this test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.e2e.conftest import LIVE_ARTIST, LIVE_SONG, LiveServer
from tests.e2e.test_host_flow import DESKTOP, shoot, watch_for_errors

pytestmark = pytest.mark.e2e

# WebRTC needs a moment more than a page does: ICE, DTLS, the first packets.
MEDIA_TIMEOUT_MS = 15_000


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Amsterdam")
    context.set_default_timeout(8_000)
    return context


def data_number(page: Page, selector: str, key: str) -> float:
    value = page.locator(selector).get_attribute(f"data-{key}")
    return float(value or 0)


def wait_for_data(page: Page, selector: str, key: str, above: float) -> None:
    """Waits until the element's data-<key> holds a number greater than `above`."""
    page.wait_for_function(
        """([selector, key, above]) => {
            const node = document.querySelector(selector);
            return node !== null && Number(node.getAttribute(`data-${key}`)) > above;
        }""",
        arg=[selector, key, above],
        timeout=MEDIA_TIMEOUT_MS,
    )


def studio_state(page: Page, base: str, show_id: str) -> dict[str, Any]:
    state: dict[str, Any] = page.request.get(f"{base}/api/v1/shows/{show_id}/studio").json()
    return state


def test_a_listener_hears_the_host_go_live(
    media_browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    # `media_browser` comes first so a missing Chromium skips before a server is started.
    started = time.monotonic()
    base = live_server.url
    host_context = new_context(media_browser)
    listener_context = new_context(media_browser)
    host = host_context.new_page()
    listener = listener_context.new_page()
    host_errors, listener_errors = watch_for_errors(host), watch_for_errors(listener)
    # Hanging up twice, or after the show's end closed the session, would show up here.
    refused_hangups: list[str] = []
    for page in (host, listener):
        page.on(
            "response",
            lambda r: (
                refused_hangups.append(f"{r.status} {r.url}")
                if r.request.method == "DELETE" and r.status >= 400
                else None
            ),
        )

    # The listener's room socket goes through Playwright, so the test can drop it and hold the
    # reconnection back: (page side, server side) per connection, the server side once joined.
    rooms: list[tuple[WebSocketRoute, WebSocketRoute | None]] = []

    def route_room(ws: WebSocketRoute) -> None:
        rooms.append((ws, ws.connect_to_server() if not rooms else None))

    listener.route_web_socket(re.compile(r".*/api/v1/rooms/\d+/ws.*"), route_room)

    # The host signs up, creates a show and queues the one long song.
    host.goto(base + "/signup")
    host.get_by_label("Username").fill("dj_tone")
    host.get_by_label("Email").fill("tone@example.org")
    host.get_by_label("Display name").fill("DJ Tone")
    host.get_by_label("Password").fill("a long enough password")
    host.get_by_role("button", name="Sign up").click()
    host.wait_for_url(base + "/")
    host.get_by_role("link", name="New show").click()
    host.get_by_label("Title").fill("Tuning Fork FM")
    host.get_by_label("Genre").fill("Test")
    host.get_by_role("button", name="Create show").click()
    host.wait_for_url("**/shows/*/console")
    show_id = host.url.rstrip("/").split("/")[-2]
    host.get_by_label("Search playable songs").fill("concert")
    host.get_by_role("button", name=f"Add {LIVE_SONG} to the queue").click()
    expect(host.locator("[data-queue] li")).to_have_count(1)
    expect(host.locator("[data-studio]")).to_be_hidden()

    # A listener waits on the show page before it starts: nothing to press yet.
    listener.goto(f"{base}/shows/{show_id}")
    listen = listener.get_by_role("button", name="Listen")
    expect(listen).to_be_disabled()
    expect(listener.locator("[data-np-empty]")).to_have_text("Nothing playing yet.")
    expect(listener.locator("[data-show-page]")).to_have_attribute("data-room", "open")

    # Going live offers the microphone at once (the box is ticked), so one press does both.
    expect(host.get_by_label("Connect my microphone")).to_be_checked()
    host.get_by_role("button", name="Go live").click()
    studio = host.locator("[data-studio]")
    expect(studio).to_be_visible()
    expect(studio).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)
    expect(host.locator("[data-line-state]")).to_have_text(
        "Microphone connected: you are on the air."
    )
    expect(host.locator("[data-studio-now]")).to_have_text(f"{LIVE_SONG} — {LIVE_ARTIST}")
    expect(host.locator("[data-now-playing]")).to_have_text(f"{LIVE_SONG} — {LIVE_ARTIST}")
    expect(host.locator("[data-queue] li")).to_have_count(0)
    voice_id = host.locator("[data-console]").get_attribute("data-voice-id")
    voices = studio_state(host, base, show_id)["voices"]
    assert voices == {voice_id: {"muted": False, "active": True}}, voices

    # The listener's page heard it from the room: live now, the song's title, Listen enabled.
    expect(listener.locator("[data-status-badge]")).to_have_text("Live")
    expect(listener.locator("[data-when]")).to_contain_text("On air since ")
    expect(listener.locator("[data-np-title]")).to_have_text(LIVE_SONG)
    expect(listener.locator("[data-np-sub]")).to_have_text(LIVE_ARTIST)
    expect(listen).to_be_enabled()
    listen.click()
    panel = listener.locator("[data-listen]")
    expect(panel).to_have_attribute("data-receiving", "yes", timeout=MEDIA_TIMEOUT_MS)
    expect(listener.get_by_role("button", name="Stop")).to_be_visible()
    expect(listener.locator("[data-receiving-text]")).to_have_text("Receiving audio")
    packets = data_number(listener, "[data-listen]", "packets-received")
    wait_for_data(listener, "[data-listen]", "packets-received", packets + 25)  # ≥ 0.5 s more
    wait_for_data(listener, "[data-listen]", "audio-level", 0.01)
    assert listener.locator("[data-player]").evaluate("a => !a.paused && a.srcObject !== null")

    # The host's console counts the listener and shows the song moving on.
    wait_for_data(host, "[data-studio]", "listener-count", 0)
    expect(host.locator("[data-listeners]")).to_have_text("1 listener")
    expect(host.locator("[data-studio-position]")).to_contain_text(" / 1:00")
    wait_for_data(host, "[data-studio]", "return-packets", 25)  # the host hears the program
    expect(host.locator("[data-studio-log]")).to_contain_text("Microphone connected.")

    # Mute and unmute; the fader by keyboard, throttled to the studio.
    mute = host.get_by_role("button", name="Mute mic")
    mute.click()
    expect(host.get_by_role("button", name="Unmute mic")).to_have_attribute("aria-pressed", "true")
    expect(host.locator("[data-line-state]")).to_contain_text("muted")
    assert studio_state(host, base, show_id)["voices"][voice_id]["muted"] is True
    host.get_by_role("button", name="Unmute mic").click()
    expect(host.get_by_role("button", name="Mute mic")).to_have_attribute("aria-pressed", "false")
    fader = host.get_by_label("Music level")
    fader.focus()
    for _ in range(3):
        host.keyboard.press("ArrowLeft")
    expect(host.locator("[data-music-level-out]")).to_have_text("\u22123 dB")  # a true minus
    deadline = time.monotonic() + 3
    while studio_state(host, base, show_id)["music_level_db"] != -3.0:
        assert time.monotonic() < deadline, "the fader never reached the studio"
        time.sleep(0.1)

    # The host hangs up and comes back on the same page: a new line, the music never stopped.
    host.get_by_role("button", name="Disconnect").click()
    expect(studio).to_have_attribute("data-line", "off")
    expect(host.get_by_role("button", name="Connect microphone")).to_be_focused()
    host.keyboard.press("Enter")
    expect(studio).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)
    wait_for_data(host, "[data-studio]", "return-packets", 25)
    expect(host.locator("[data-studio-log]")).to_contain_text("Microphone disconnected.")
    expect(listener.locator("[data-listen]")).to_have_attribute("data-receiving", "yes")

    shoot(host, artifacts, "console-studio")
    shoot(listener, artifacts, "show-listening")

    # The listener's room connection drops; the page comes back asking for what it missed.
    page_side, server_side = rooms[0]
    page_side.close(code=1011, reason="dropped by the test")
    assert server_side is not None
    server_side.close()
    deadline = time.monotonic() + 5
    while len(rooms) < 2:
        assert time.monotonic() < deadline, "the page did not reconnect to the room"
        listener.wait_for_timeout(50)
    assert re.search(r"[?&]since=\d+", rooms[1][0].url), rooms[1][0].url

    # While it is held back, the host ends the show; the listener's page is told only by the
    # missed events that the server replays once the connection goes through.
    end = host.locator("[data-end-show]")
    end.click()
    end.click()
    expect(host.locator("[data-status-badge]")).to_have_text("Ended")
    expect(studio).to_be_hidden()
    expect(listener.locator("[data-status-badge]")).to_have_text("Live")
    rooms[1][0].connect_to_server()
    expect(listener.locator("[data-np-empty]")).to_have_text(
        "The show has ended. Thanks for listening!"
    )
    expect(listener.locator("[data-listen]")).to_be_hidden()
    expect(listener.locator("[data-status-badge]")).to_have_text("Ended")
    expect(listener.locator("[data-when]")).to_contain_text("Ended ")
    assert listener.locator("[data-player]").evaluate("a => a.paused && a.srcObject === null")
    shoot(listener, artifacts, "show-ended-live")

    assert host_errors == [] and listener_errors == []
    assert refused_hangups == []
    host_context.close()
    listener_context.close()
    assert time.monotonic() - started < 60
