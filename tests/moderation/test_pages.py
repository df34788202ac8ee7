"""The moderation pages as browsers read them: who may open which, and everything escaped."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from onair.accounts.models import Role
from tests.moderation.people import MakePerson, Person, act, chat, filed, new_show
from tests.test_web_pages import HTML, XSS, XSS_ESCAPED, page


async def _page(person: Person | httpx.AsyncClient, path: str, status: int = 200) -> str:
    client = person.client if isinstance(person, Person) else person
    return await page(client, path, status)


async def test_the_rules_page_renders_the_rules_as_text_for_everyone(
    client: httpx.AsyncClient, people: MakePerson, admin: Person
) -> None:
    html = await _page(client, "/rules")
    assert "Community rules" in html and "Be kind." in html
    assert 'href="/rules"' in html  # the footer links it from every page
    assert "data-rules-form" not in html and "moderation.js" not in html

    body = f"Rule one: be nice.\nNo {XSS} here.\n\n- first item\n- second <b>item</b>\n\nThe end."
    r = await admin.client.put("/api/v1/rules", json={"body": body})
    assert r.status_code == 200, r.text
    html = await _page(client, "/rules")
    assert XSS not in html and "<b>item</b>" not in html
    assert f"<p>Rule one: be nice.<br>No {XSS_ESCAPED} here.</p>" in html
    assert "<li>first item</li>" in html and "<li>second &lt;b&gt;item&lt;/b&gt;</li>" in html
    assert "<p>The end.</p>" in html and "Last changed" in html

    listener = await people("ann")
    assert "data-rules-form" not in await _page(listener, "/rules")
    mine = await _page(admin, "/rules")
    assert "data-rules-form" in mine and "/static/moderation.js" in mine
    # The form holds the stored text, escaped too.
    assert f"No {XSS_ESCAPED} here." in mine.split("<textarea", 1)[1]


async def test_the_queue_page_is_for_moderators(
    client: httpx.AsyncClient, app: FastAPI, people: MakePerson, mod: Person, admin: Person
) -> None:
    r = await client.get("/moderation", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/moderation"
    listener = await people("ann")
    denied = await _page(listener, "/moderation", 403)
    assert "Only moderators can open the reports queue." in denied
    assert 'href="/moderation"' not in await _page(listener, "/")

    host, troll = await people("host"), await people("troll")
    show_id = await new_show(host, f"Show {XSS}")
    message_id = await chat(troll, show_id, f"hello {XSS}")
    first = await filed(listener, "message", message_id, "harassment")
    await filed(host, "message", message_id, "hate")
    await filed(listener, "show", show_id, "copyright")
    about_mod = await filed(listener, "user", mod.id, "other")

    html = await _page(mod, "/moderation")
    assert 'href="/moderation"' in html  # the nav link
    assert XSS not in html and f"hello {XSS_ESCAPED}" in html and f"Show {XSS_ESCAPED}" in html
    assert html.count('class="panel report-case"') == 4
    assert f'data-report-id="{first}"' in html and f'data-target-key="message:{message_id}"' in html
    assert "1 more open report on this" in html
    assert 'data-action="remove_message"' in html and 'data-action="end_show"' in html
    # A report about a moderator is for an admin; the moderator gets no buttons for it.
    row = html.split(f'data-report-id="{about_mod}"', 1)[1].split("</li>", 1)[0]
    assert "data-action" not in row and "an admin handles it" in row
    admin_row = (await _page(admin, "/moderation")).split(f'data-report-id="{about_mod}"', 1)[1]
    assert 'data-action="warn"' in admin_row.split("</li>", 1)[0]

    assert (await act(mod, first, "remove_message")).status_code == 200
    html = await _page(mod, "/moderation")
    assert html.count('class="panel report-case"') == 2 and f"hello {XSS_ESCAPED}" not in html


async def test_the_audit_page_is_for_admins_and_filters(
    client: httpx.AsyncClient, people: MakePerson, mod: Person, admin: Person
) -> None:
    r = await client.get("/moderation/audit", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert "Only admins can read the audit log." in await _page(mod, "/moderation/audit", 403)
    listener = await people("ann")
    await _page(listener, "/moderation/audit", 403)

    troll = await people("troll")
    await admin.client.post(
        f"/api/v1/moderation/users/{troll.id}/warn", json={"reason": f"stop it {XSS}"}
    )
    await admin.client.put("/api/v1/rules", json={"body": "Be good."})
    html = await _page(admin, "/moderation/audit")
    assert "<table" in html and XSS not in html and f"stop it {XSS_ESCAPED}" in html
    assert "<code>user.warn</code>" in html and "<code>rules.edit</code>" in html
    assert html.index("rules.edit") < html.index("user.warn")  # newest first
    assert '<option value="user.warn">' in html

    only = await _page(admin, "/moderation/audit?action=user.warn&target_user=troll")
    assert "<code>user.warn</code>" in only and "<code>rules.edit</code>" not in only
    assert 'value="troll"' in only
    none = await _page(admin, "/moderation/audit?actor=nobody")
    assert "No entries match these filters" in none
    bad = await _page(admin, "/moderation/audit?since=yesterday&show_id=x")
    assert "Since: give a date and time" in bad and "Show: a whole number" in bad
    await _page(admin, "/moderation/audit?since=2026-01-01T00:00&until=2030-01-01T00:00")


async def test_roles_see_their_nav_links(people: MakePerson) -> None:
    for name, role, sees in (
        ("ann", Role.listener, False),
        ("moe", Role.moderator, True),
        ("ada", Role.admin, True),
    ):
        person = await people(name, role)
        assert ('href="/moderation"' in await _page(person, "/")) is sees, name
