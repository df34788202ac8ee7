"""The console's "Broadcast from DJ software" panel in Chromium: the settings are there, the key
only when asked (by keyboard), hidden again, and a new key replaces it after a confirmation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import LiveServer
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import watch_for_errors

pytestmark = pytest.mark.e2e


def test_the_host_reveals_hides_and_rotates_the_source_key(
    browser: BrowserContext, live_server: LiveServer
) -> None:
    base = live_server.url
    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, base, "dj_panel", "DJ Panel")
    show_id = page.request.post(f"{base}/api/v1/shows", data={"title": "Panel Show"}).json()["id"]
    page.goto(f"{base}/shows/{show_id}/console")

    panel = page.locator("[data-source-settings]")
    expect(panel.get_by_role("heading", name="Broadcast from DJ software")).to_be_visible()
    expect(panel.get_by_text(f"/{show_id}", exact=True)).to_be_visible()
    expect(panel.get_by_text(str(live_server.settings.source_port), exact=True)).to_be_visible()
    key = panel.locator("[data-source-key]")
    expect(key).to_have_text("hidden")

    reveal = panel.get_by_role("button", name="Show key")
    reveal.focus()
    page.keyboard.press("Enter")
    expect(key).to_have_text(re.compile(r"^[A-Za-z0-9_-]{32}$"))
    first = key.inner_text()
    assert first == page.request.get(f"{base}/api/v1/shows/{show_id}/source").json()["key"]
    hide = panel.get_by_role("button", name="Hide key")
    expect(hide).to_have_attribute("aria-pressed", "true")
    hide.click()
    expect(key).to_have_text("hidden")

    page.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_role("button", name="New key").click()
    expect(panel.locator("[data-source-status]")).to_contain_text("A new key is in place")
    expect(key).not_to_have_text(first)
    expect(key).to_have_text(re.compile(r"^[A-Za-z0-9_-]{32}$"))
    assert errors == []
