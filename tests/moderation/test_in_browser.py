"""The moderation pages in Debian's Chromium: a moderator works the queue with the keyboard and
the mouse, an admin edits the rules; no script error, no CSP refusal, markup stays text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.databases import execute_sql
from tests.e2e.conftest import LiveServer, browser, live_server, playwright  # noqa: F401
from tests.e2e.test_call_in import sign_up
from tests.e2e.test_host_flow import watch_for_errors

pytestmark = pytest.mark.e2e

XSS = '<img src=x onerror="window.__xss=1">'


def _set_role(server: LiveServer, username: str, role: str) -> None:
    execute_sql(
        server.settings.resolved_database_url,
        "UPDATE users SET role = :role WHERE username = :username",
        role=role,
        username=username,
    )


@contextmanager
def _listener(server: LiveServer, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/api/v1/accounts/signup",
            json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        yield http


def test_a_moderator_works_the_queue_and_an_admin_edits_the_rules(
    browser: BrowserContext,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    base = live_server.url
    with _listener(live_server, "b_host") as host, _listener(live_server, "b_troll") as troll:
        show_id = host.post("/api/v1/shows", json={"title": "Browser Talk"}).json()["id"]
        message = troll.post(f"/api/v1/shows/{show_id}/chat", json={"text": f"hi {XSS}"}).json()
        troll_id = troll.get("/api/v1/accounts/me").json()["id"]
        with _listener(live_server, "b_fan") as fan:
            for target, target_id in (("message", message["id"]), ("user", troll_id)):
                r = fan.post(
                    "/api/v1/reports",
                    json={"target": target, "target_id": target_id, "reason": "harassment"},
                )
                assert r.status_code == 201, r.text

    page = browser.new_page()
    errors = watch_for_errors(page)
    sign_up(page, base, "b_mod", "Mod")
    _set_role(live_server, "b_mod", "moderator")
    page.goto(f"{base}/moderation")
    expect(page.get_by_role("link", name="Moderation")).to_be_visible()
    rows = page.locator("[data-report-id]")
    expect(rows).to_have_count(2)
    first = rows.first
    expect(first.locator("blockquote")).to_have_text(f"hi {XSS}")
    assert page.evaluate("window.__xss") is None

    # No reason, no action: the field says why and takes the focus.
    first.get_by_role("button", name="Remove message").click()
    expect(first.locator("[data-report-error]")).to_contain_text("Reason")
    expect(first.get_by_label("Reason")).to_be_focused()
    page.keyboard.type("harassing the host")
    first.get_by_role("button", name="Remove message").focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(page.locator("[data-queue-status]")).to_contain_text("the message was removed")
    # The keyboard carries on with the next report.
    expect(rows.first.get_by_label("Reason")).to_be_focused()
    page.keyboard.type("threats")

    ban = rows.first.get_by_role("button", name="Ban")
    ban.click()
    expect(ban).to_have_text("Press again to ban")
    expect(rows).to_have_count(1)
    ban.click()
    expect(rows).to_have_count(0)
    expect(page.locator("[data-queue-empty]")).to_be_visible()
    expect(page.locator("[data-open-count]")).to_have_text("0 open reports")

    page.goto(f"{base}/moderation/audit")
    expect(page.locator("h1")).to_have_text("You can't open this page")
    _set_role(live_server, "b_mod", "admin")
    page.goto(f"{base}/moderation/audit")
    table = page.locator(".audit-table tbody tr")
    expect(table).to_have_count(2)
    expect(table.first).to_contain_text("user.ban")
    page.get_by_label("Action").fill("chat.delete")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_have_count(1)
    expect(table.first).to_contain_text("harassing the host")

    page.goto(f"{base}/rules")
    rules = page.get_by_role("textbox", name="Rules")
    rules.fill(f"Be excellent.\n\n- no {XSS}\n- no spam")
    page.get_by_role("button", name="Save the rules").click()
    expect(page.locator("[data-rules-status]")).to_contain_text("Saved")
    expect(page.locator("[data-rules-body] li")).to_have_text([f"no {XSS}", "no spam"])
    page.reload()
    expect(page.locator("[data-rules-body] p").first).to_have_text("Be excellent.")
    assert page.evaluate("window.__xss") is None
    assert errors == []
