"""A call-in in two real browsers: a listener calls in with a fake microphone, the host screens
them and puts them on air from the console, then drops them; both pages follow every state."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LIVE_SONG, LiveServer
from tests.e2e.test_host_flow import shoot, watch_for_errors
from tests.e2e.test_live_in_browser import MEDIA_TIMEOUT_MS, new_context

pytestmark = pytest.mark.e2e


def sign_up(page: Page, base: str, username: str, name: str) -> None:
    r = page.request.post(
        f"{base}/api/v1/accounts/signup",
        data={
            "username": username,
            "email": f"{username}@example.org",
            "password": "a long enough password",
            "display_name": name,
        },
    )
    assert r.status == 201, r.text()


def test_a_listener_calls_in_and_the_host_puts_them_on_air(
    media_browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    host_context, caller_context = new_context(media_browser), new_context(media_browser)
    host, caller = host_context.new_page(), caller_context.new_page()
    host_errors, caller_errors = watch_for_errors(host), watch_for_errors(caller)

    sign_up(host, base, "phone_host", "Phone Host")
    show = host.request.post(f"{base}/api/v1/shows", data={"title": "Open Lines"}).json()
    show_id = show["id"]
    found = host.request.get(f"{base}/api/v1/catalog/search", params={"q": "concert"}).json()
    song = next(t for t in found["tracks"] if t["title"] == LIVE_SONG)
    host.request.post(f"{base}/api/v1/shows/{show_id}/queue", data={"track_id": song["id"]})
    host.goto(f"{base}/shows/{show_id}/console")
    host.get_by_role("button", name="Go live").click()
    studio = host.locator("[data-studio]")
    expect(studio).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)
    callins = host.locator("[data-call-ins]")
    expect(callins).to_be_visible()
    expect(host.locator("[data-callins-summary]")).to_have_text("No one is calling in.")

    # The listener calls in from the show page, with a topic.
    sign_up(caller, base, "talkative", "Tala Tive")
    caller.goto(f"{base}/shows/{show_id}")
    panel = caller.locator("[data-call-in]")
    expect(panel).to_be_visible()
    caller.get_by_role("button", name="Listen").click()
    expect(caller.locator("[data-listen]")).to_have_attribute(
        "data-receiving", "yes", timeout=MEDIA_TIMEOUT_MS
    )
    caller.get_by_label("What would you like to talk about?").fill("Jazz on <b>vinyl</b>")
    caller.get_by_role("button", name="Call in").click()
    expect(panel).to_have_attribute("data-state", "requested")
    expect(caller.locator("[data-call-state]")).to_contain_text("You are in the call-in queue")
    expect(caller.get_by_role("button", name="Hang up")).to_be_focused()

    # The host sees the call, with the topic as text (never as markup).
    row = host.locator("[data-callin-list] li", has_text="Tala Tive")
    expect(row).to_be_visible()
    expect(row.locator(".callin-topic")).to_have_text("Jazz on <b>vinyl</b>")
    expect(row).to_have_attribute("data-state", "requested")
    expect(host.locator("[data-callins-summary]")).to_contain_text("1 waiting")
    shoot(host, artifacts, "console-call-waiting")

    # Screening: a private line; the caller's page opens its microphone line and stops Listen.
    host.get_by_role("button", name="Screen: Tala Tive").click()
    expect(panel).to_have_attribute("data-state", "screening", timeout=MEDIA_TIMEOUT_MS)
    expect(caller.locator("[data-call-state]")).to_contain_text("off air")
    expect(panel).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)
    expect(caller.get_by_role("button", name="Listen")).to_be_disabled()
    expect(row).to_have_attribute("data-state", "screening")
    expect(row).to_contain_text("connected", timeout=MEDIA_TIMEOUT_MS)

    # On air: both pages say so.
    host.get_by_role("button", name="Put on air: Tala Tive").click()
    expect(panel).to_have_attribute("data-state", "on_air", timeout=MEDIA_TIMEOUT_MS)
    expect(caller.locator("[data-call-state]")).to_have_text(
        "You are ON AIR: everyone listening hears you."
    )
    expect(row).to_have_attribute("data-state", "on_air")
    expect(row.locator(".chip")).to_have_text("On air")
    stage = host.request.get(f"{base}/api/v1/shows/{show_id}/stage").json()
    assert [c["name"] for c in stage["on_air"]] == ["Tala Tive"]
    assert stage["voices_on_air"] == 2
    shoot(host, artifacts, "console-caller-on-air")
    shoot(caller, artifacts, "show-caller-on-air")

    # A page reload puts the caller back where the server says they are.
    caller.reload()
    expect(panel).to_have_attribute("data-state", "on_air", timeout=MEDIA_TIMEOUT_MS)
    expect(panel).to_have_attribute("data-line", "connected", timeout=MEDIA_TIMEOUT_MS)

    # The host mutes, then drops the caller; the caller's page is back to calling in.
    host.get_by_role("button", name="Mute: Tala Tive").click()
    expect(row).to_contain_text("muted by you")
    host.get_by_role("button", name="Drop: Tala Tive").click()
    expect(panel).to_have_attribute("data-state", "dropped", timeout=MEDIA_TIMEOUT_MS)
    expect(caller.locator("[data-call-state]")).to_contain_text("The host ended your call")
    expect(caller.get_by_role("button", name="Call in")).to_be_visible()
    expect(host.locator("[data-callins-summary]")).to_have_text("No one is calling in.")
    expect(caller.get_by_role("button", name="Listen")).to_be_enabled()

    host.request.post(f"{base}/api/v1/shows/{show_id}/end")
    assert host_errors == [] and caller_errors == []
    host_context.close()
    caller_context.close()
