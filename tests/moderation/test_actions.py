"""What moderators do about reports and accounts, end to end, and who may do it to whom."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from onair.accounts.models import Role, Session
from onair.clock import FakeClock
from onair.rooms.models import ChatMessage
from onair.shows.models import Show
from tests.moderation.people import (
    MakePerson,
    Person,
    account,
    act,
    audit_rows,
    chat,
    filed,
    new_show,
    on_user,
)


async def _sessions_of(app: FastAPI, user_id: int) -> int:
    async with app.state.onair.sessions() as db:
        count = await db.scalar(select(func.count()).where(Session.user_id == user_id))
        return int(count or 0)


async def _show(app: FastAPI, show_id: int) -> Show:
    async with app.state.onair.sessions() as db:
        show = await db.get(Show, show_id)
        assert show is not None
        return show


async def test_dismissing_closes_the_report_and_is_audited(
    app: FastAPI, people: MakePerson, mod: Person, clock: FakeClock
) -> None:
    ann, bob, carol = await people("ann"), await people("bob"), await people("carol")
    first = await filed(ann, "user", bob.id, "harassment")
    second = await filed(carol, "user", bob.id, "hate")
    clock.advance(30)
    r = await act(mod, first, "dismiss", "a joke between friends")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "dismissed" and body["resolved_by"] == mod.id
    assert body["resolved_at"] == "2026-01-01T12:00:30Z"
    mine = (await carol.client.get("/api/v1/reports/mine")).json()
    assert mine[0]["id"] == second and mine[0]["status"] == "dismissed"
    [entry] = await audit_rows(app)
    assert (entry.action, entry.actor_id, entry.reason) == (
        "report.dismiss",
        mod.id,
        "a joke between friends",
    )
    assert (entry.target_user_id, entry.report_id) == (bob.id, first)
    assert entry.details == {"also_resolved": [second]}
    again = await act(mod, first, "warn")
    assert again.status_code == 409 and again.json()["error"]["code"] == "resolved"


async def test_removing_a_reported_message(app: FastAPI, people: MakePerson, mod: Person) -> None:
    host, troll, ann = await people("host"), await people("troll"), await people("ann")
    show_id = await new_show(host)
    message_id = await chat(troll, show_id, "something vile")
    report_id = await filed(ann, "message", message_id, "hate")
    r = await act(mod, report_id, "remove_message", "hate speech")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "actioned" and r.json()["message"]["deleted"] is True
    async with app.state.onair.sessions() as db:
        message = await db.get(ChatMessage, message_id)
        assert message is not None and message.deleted_at is not None
        assert message.deleted_by == mod.id
    chat_page = (await ann.client.get(f"/api/v1/shows/{show_id}/chat")).json()["messages"]
    assert message_id not in [m["id"] for m in chat_page]
    [entry] = await audit_rows(app)
    assert (entry.action, entry.actor_id, entry.reason) == ("chat.delete", mod.id, "hate speech")
    assert (entry.message_id, entry.show_id, entry.target_user_id, entry.report_id) == (
        message_id,
        show_id,
        troll.id,
        report_id,
    )
    # Only a message's report can remove a message.
    user_report = await filed(ann, "user", troll.id)
    r = await act(mod, user_report, "remove_message")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_message"


async def test_warning_is_audited_from_a_report_or_directly(
    app: FastAPI, people: MakePerson, mod: Person
) -> None:
    ann, bob = await people("ann"), await people("bob")
    report_id = await filed(ann, "user", bob.id)
    assert (await act(mod, report_id, "warn", "mind your language")).status_code == 200
    r = await on_user(mod, bob.id, "warn", "second time")
    assert r.status_code == 200 and r.json()["username"] == "bob"
    entries = await audit_rows(app)
    assert [(e.action, e.reason, e.report_id) for e in entries] == [
        ("user.warn", "mind your language", report_id),
        ("user.warn", "second time", None),
    ]
    assert all(e.target_user_id == bob.id and e.actor_id == mod.id for e in entries)
    # A warning bars nothing.
    assert (await bob.client.get("/api/v1/accounts/me")).status_code == 200


async def test_a_suspension_signs_the_user_out_until_it_ends(
    app: FastAPI, people: MakePerson, mod: Person, clock: FakeClock
) -> None:
    ann, bob = await people("ann"), await people("bob")
    assert (await bob.login()).status_code == 200  # a second browser
    assert await _sessions_of(app, bob.id) == 2
    report_id = await filed(ann, "user", bob.id, "spam")

    r = await act(mod, report_id, "suspend", "spamming every show", hours=24)
    assert r.status_code == 200, r.text
    assert r.json()["account"]["suspended_until"] == "2026-01-02T12:00:00Z"
    assert await _sessions_of(app, bob.id) == 0
    assert (await bob.client.get("/api/v1/accounts/me")).status_code == 401
    r = await bob.login()
    assert r.status_code == 403 and r.json()["error"]["code"] == "suspended"
    assert "until 2026-01-02 12:00 UTC" in r.json()["error"]["message"]
    assert "onair_session" not in r.headers.get("set-cookie", "")
    # A wrong password still says only that: the suspension is told to the owner alone.
    wrong = await bob.client.post(
        "/api/v1/accounts/login", json={"login": "bob", "password": "not the password"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_credentials"

    [entry] = await audit_rows(app)
    assert (entry.action, entry.target_user_id, entry.report_id) == (
        "user.suspend",
        bob.id,
        report_id,
    )
    assert entry.details == {"hours": 24, "until": "2026-01-02T12:00:00+00:00"}

    clock.advance(24 * 3600 - 1)
    assert (await bob.login()).status_code == 403
    clock.advance(1)
    assert (await bob.login()).status_code == 200
    assert (await bob.client.get("/api/v1/accounts/me")).status_code == 200


async def test_a_suspension_can_end_early(app: FastAPI, people: MakePerson, mod: Person) -> None:
    bob = await people("bob")
    r = await on_user(mod, bob.id, "unsuspend", "not suspended")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_suspended"
    assert (await on_user(mod, bob.id, "suspend", "cool off", hours=2)).status_code == 200
    assert (await bob.login()).status_code == 403
    r = await on_user(mod, bob.id, "unsuspend", "appeal accepted")
    assert r.status_code == 200 and r.json()["suspended_until"] is None
    assert (await bob.login()).status_code == 200
    assert [e.action for e in await audit_rows(app)] == ["user.suspend", "user.unsuspend"]


async def test_a_ban_lasts_until_an_admin_lifts_it(
    app: FastAPI, people: MakePerson, mod: Person, admin: Person, clock: FakeClock
) -> None:
    ann, bob = await people("ann"), await people("bob")
    report_id = await filed(ann, "user", bob.id, "hate")
    r = await act(mod, report_id, "ban", "slurs")
    assert r.status_code == 200, r.text
    assert r.json()["account"]["banned_at"] == "2026-01-01T12:00:00Z"
    assert (await bob.client.get("/api/v1/accounts/me")).status_code == 401
    clock.advance(20 * 86400)  # long after any suspension, within the session's 30 days
    r = await bob.login()
    assert r.status_code == 403 and r.json()["error"]["code"] == "banned"
    again = await on_user(mod, bob.id, "ban", "again")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_banned"
    suspend = await on_user(mod, bob.id, "suspend", "too", hours=1)
    assert suspend.status_code == 409

    assert (await on_user(mod, bob.id, "unban", "appeal")).status_code == 403
    r = await on_user(admin, bob.id, "unban", "appeal accepted")
    assert r.status_code == 200 and r.json()["banned_at"] is None
    assert (await bob.login()).status_code == 200
    assert (await on_user(admin, bob.id, "unban", "twice")).status_code == 409
    actions = [(e.action, e.actor_id) for e in await audit_rows(app)]
    assert actions == [("user.ban", mod.id), ("user.unban", admin.id)]
    assert (await account(app, bob.id)).banned_at is None


async def test_ending_a_reported_live_show(app: FastAPI, people: MakePerson, mod: Person) -> None:
    host, ann = await people("host"), await people("ann")
    show_id = await new_show(host, "Pirate Radio")
    assert app.state.onair.stations.get(show_id) is not None
    report_id = await filed(ann, "show", show_id, "copyright")
    r = await act(mod, report_id, "end_show", "unlicensed broadcast")
    assert r.status_code == 200, r.text
    assert r.json()["show"]["status"] == "ended"
    assert app.state.onair.stations.get(show_id) is None
    show = await _show(app, show_id)
    assert show.status == "ended" and show.ended_at is not None
    [entry] = await audit_rows(app)
    assert (entry.action, entry.show_id, entry.target_user_id, entry.report_id) == (
        "show.end",
        show_id,
        host.id,
        report_id,
    )
    assert entry.details == {"title": "Pirate Radio"}
    # The host keeps the account; an ended show cannot be ended again.
    assert (await host.client.get("/api/v1/accounts/me")).status_code == 200
    late = await filed(ann, "show", show_id, "other")
    r = await act(mod, late, "end_show", "again")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_live"
    # A user's report has no show to end.
    user_report = await filed(ann, "user", host.id)
    r = await act(mod, user_report, "end_show", "no show")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_show"


async def test_a_message_report_can_end_the_show_it_was_written_in(
    app: FastAPI, people: MakePerson, mod: Person
) -> None:
    host, ann = await people("host"), await people("ann")
    show_id = await new_show(host)
    message_id = await chat(host, show_id, "the host says something awful")
    report_id = await filed(ann, "message", message_id, "hate")
    assert (await act(mod, report_id, "end_show", "host on a rant")).status_code == 200
    assert (await _show(app, show_id)).status == "ended"


async def test_suspending_a_live_host_ends_their_show(
    app: FastAPI, people: MakePerson, mod: Person
) -> None:
    host = await people("host")
    show_id = await new_show(host)
    assert (await on_user(mod, host.id, "suspend", "abusive on air", hours=1)).status_code == 200
    assert app.state.onair.stations.get(show_id) is None
    assert (await _show(app, show_id)).status == "ended"
    entries = [(e.action, e.show_id, e.target_user_id) for e in await audit_rows(app)]
    assert entries == [("show.end", show_id, host.id), ("user.suspend", None, host.id)]


async def test_actions_are_validated(people: MakePerson, mod: Person) -> None:
    ann, bob = await people("ann"), await people("bob")
    report_id = await filed(ann, "user", bob.id)
    bad: list[dict[str, object]] = [
        {"action": "delete", "reason": "x"},
        {"action": "warn"},
        {"action": "warn", "reason": ""},
        {"action": "warn", "reason": "x" * 1001},
        {"action": "suspend", "reason": "x", "hours": 0},
        {"action": "suspend", "reason": "x", "hours": 8761},
        {"action": "suspend", "reason": "x", "hours": "a day"},
        {"reason": "x"},
    ]
    for body in bad:
        r = await mod.client.post(f"/api/v1/moderation/reports/{report_id}/actions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "invalid"
    r = await mod.client.post(
        f"/api/v1/moderation/reports/{report_id}/actions", json={"action": "suspend", "reason": "x"}
    )
    assert r.status_code == 422 and "hours" in r.json()["error"]["message"]
    for path in ("reports/424242/actions", "reports/0/actions", "reports/x/actions"):
        r = await mod.client.post(
            f"/api/v1/moderation/{path}", json={"action": "warn", "reason": "x"}
        )
        assert r.status_code in (404, 422), (path, r.text)
    assert (await on_user(mod, 424242, "warn")).status_code == 404
    assert (await on_user(mod, bob.id, "suspend")).status_code == 422  # no hours
    assert (await on_user(mod, bob.id, "warn", "")).status_code == 422
    # Nothing was done to bob.
    assert (await bob.client.get("/api/v1/accounts/me")).status_code == 200


async def test_who_may_act_on_whom(
    client: httpx.AsyncClient, people: MakePerson, mod: Person, admin: Person
) -> None:
    ann = await people("ann")
    other_mod = await people("mod2", Role.moderator)
    other_admin = await people("boss2", Role.admin)
    about_admin = await filed(ann, "user", admin.id, "other")

    assert (
        await client.post(f"/api/v1/moderation/users/{ann.id}/warn", json={"reason": "x"})
    ).status_code == 401
    assert (await act(ann, about_admin, "dismiss")).status_code == 403
    assert (await on_user(ann, mod.id, "warn")).status_code == 403
    for action, extra in (("warn", {}), ("suspend", {"hours": 1}), ("ban", {})):
        # Moderators act on listeners only; admins on moderators and other admins too.
        assert (await on_user(mod, admin.id, action, **extra)).status_code == 403, action
        assert (await on_user(mod, other_mod.id, action, **extra)).status_code == 403, action
        assert (await on_user(mod, mod.id, action, **extra)).status_code == 403, action
        assert (await on_user(admin, admin.id, action, **extra)).status_code == 403, action
    r = await act(mod, about_admin, "dismiss", "not my call")
    assert r.status_code == 403 and "admins" in r.json()["error"]["message"]
    assert (await act(other_admin, about_admin, "dismiss", "fine")).status_code == 200
    assert (await on_user(admin, other_mod.id, "suspend", "rogue", hours=1)).status_code == 200
    assert (await on_user(admin, other_admin.id, "warn", "careful")).status_code == 200
    assert (await on_user(mod, ann.id, "warn", "careful")).status_code == 200
    # A suspended moderator is out like anyone else.
    assert (await other_mod.client.get("/api/v1/moderation/reports")).status_code == 401
