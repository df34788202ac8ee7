"""Chat in two real browsers: a listener writes and reacts on the show page, the host pins and
deletes from the console; markup in names, titles, hashtags and messages stays inert text."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LiveServer
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import shoot, watch_for_errors
from tests.e2e.test_live_in_browser import new_context

pytestmark = pytest.mark.e2e

XSS = '<img src=x onerror="window.__xss=1">'


def assert_inert(page: Page) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0


def test_listener_and_host_chat_and_markup_stays_text(
    media_browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    host_context, fan_context = new_context(media_browser), new_context(media_browser)
    host, fan = host_context.new_page(), fan_context.new_page()
    host_errors, fan_errors = watch_for_errors(host), watch_for_errors(fan)

    sign_up(host, base, "chat_host", f"Host {XSS}")
    # Hashtags are words: markup is refused outright rather than stored.
    for tag in (XSS, "javascript:alert(1)"):
        refused = host.request.post(f"{base}/api/v1/shows", data={"title": "x", "hashtags": [tag]})
        assert refused.status == 422 and "hashtag" in refused.json()["error"]["message"]
    show = host.request.post(
        f"{base}/api/v1/shows", data={"title": f"Late Talk {XSS}", "hashtags": ["night_talk"]}
    )
    assert show.status == 201, show.text()
    show_id = show.json()["id"]
    host.goto(f"{base}/shows/{show_id}/console")
    host_chat = host.locator("[data-chat]")
    expect(host_chat.locator("[data-chat-empty]")).to_be_visible()

    sign_up(fan, base, "chat_fan", f"Fan {XSS}")
    fan.goto(f"{base}/shows/{show_id}")
    expect(fan.locator("h1")).to_have_text(f"Late Talk {XSS}")
    chat = fan.locator("[data-chat]")
    expect(chat.locator(".reaction").first).to_be_enabled()

    # The listener writes, with the keyboard; both pages show it as the text it is.
    text = f"hello {XSS} [x](javascript:alert(1))"
    box = chat.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    fan_line = chat.locator("[data-chat-log] .chat-message").first
    expect(fan_line.locator(".chat-text")).to_have_text(text)
    expect(box).to_have_value("")
    host_line = host_chat.locator("[data-chat-log] .chat-message").first
    expect(host_line.locator(".chat-text")).to_have_text(text)
    expect(host_line.locator(".chat-author")).to_have_text(f"Fan {XSS}")

    # A reaction from the listener reaches the host as a burst.
    chat.get_by_role("button", name="React 🔥").click()
    expect(host_chat.locator("[data-reaction-burst]")).to_contain_text("🔥 1")

    # The host pins it from the message's menu; the listener sees the pin.
    host_line.locator("summary").click()
    host_line.get_by_role("button", name="Pin").click()
    expect(chat.locator("[data-chat-pinned-text]")).to_have_text(text)
    shoot(fan, artifacts, "chat-listener")
    shoot(host, artifacts, "chat-console")

    # Then deletes it: gone from the listener's page, pin and all.
    host_line.get_by_role("button", name="Delete").click()
    expect(chat.locator("[data-chat-log] .chat-message")).to_have_count(0)
    expect(chat.locator("[data-chat-pinned]")).to_be_hidden()

    for page in (host, fan):
        assert_inert(page)
    assert host_errors == [] and fan_errors == []
    host_context.close()
    fan_context.close()


def test_a_listener_reports_a_show_and_its_host(
    media_browser: Browser, live_server: LiveServer
) -> None:
    base = live_server.url
    host_context, fan_context = new_context(media_browser), new_context(media_browser)
    host, fan = host_context.new_page(), fan_context.new_page()
    sign_up(host, base, "reported_host", "Reported Host")
    show_id = host.request.post(f"{base}/api/v1/shows", data={"title": "Spammy"}).json()["id"]
    host.goto(f"{base}/shows/{show_id}")
    expect(host.get_by_text("Report this show")).to_have_count(0)  # not one's own

    sign_up(fan, base, "reporter", "Reporter")
    errors = watch_for_errors(fan)
    fan.goto(f"{base}/shows/{show_id}")
    box = fan.locator("[data-report]")
    box.get_by_text("Report this show").click()
    box.get_by_label("Reason").select_option("spam")
    box.get_by_label("What happened?").fill("Links to a <b>shop</b> every minute")
    box.get_by_role("button", name="Send report").click()
    expect(box.locator("[data-report-done]")).to_contain_text("Thank you")

    fan.goto(f"{base}/users/reported_host")
    account = fan.locator("[data-report]")
    account.get_by_text("Report this account").click()
    account.get_by_label("Reason").select_option("harassment")
    account.get_by_role("button", name="Send report").click()
    expect(account.locator("[data-report-done]")).to_contain_text("Thank you")

    mine = fan.request.get(f"{base}/api/v1/reports/mine").json()
    assert sorted((r["target"], r["reason"]) for r in mine) == [
        ("show", "spam"),
        ("user", "harassment"),
    ]
    assert errors == []
    host_context.close()
    fan_context.close()
