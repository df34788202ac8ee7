"""Reporting messages, users and shows, and the moderators' queue of open reports."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from onair.clock import FakeClock
from onair.moderation.models import Report
from tests.moderation.people import MakePerson, Person, act, chat, filed, new_show, report


async def _stored(app: FastAPI, report_id: int) -> Report:
    async with app.state.onair.sessions() as db:
        found = await db.get(Report, report_id)
        assert found is not None
        return found


async def test_each_kind_of_target_can_be_reported(app: FastAPI, people: MakePerson) -> None:
    host, troll, ann = await people("host"), await people("troll"), await people("ann")
    show_id = await new_show(host)
    message_id = await chat(troll, show_id, "buy followers at spam.example")

    r = await report(ann, "message", message_id, "spam", "  keeps posting this  ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["target"] == "message" and body["target_id"] == message_id
    assert body["status"] == "open" and body["details"] == "keeps posting this"
    stored = await _stored(app, body["id"])
    # A message's report names its author and its show, so the queue can show both.
    assert (stored.user_id, stored.show_id, stored.reporter_id) == (troll.id, show_id, ann.id)

    user_report = await filed(ann, "user", troll.id, "harassment")
    assert (await _stored(app, user_report)).user_id == troll.id
    show_report = await filed(ann, "show", show_id, "copyright")
    stored = await _stored(app, show_report)
    assert (stored.show_id, stored.user_id) == (show_id, host.id)

    mine = (await ann.client.get("/api/v1/reports/mine")).json()
    assert [m["id"] for m in mine] == [show_report, user_report, body["id"]]
    assert (await troll.client.get("/api/v1/reports/mine")).json() == []


async def test_a_report_needs_a_real_target_and_a_known_reason(
    client: httpx.AsyncClient, people: MakePerson
) -> None:
    ann, bob = await people("ann"), await people("bob")
    for target in ("message", "user", "show"):
        r = await report(ann, target, 424242)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    bad_bodies: list[dict[str, object]] = [
        {"target": "song", "target_id": bob.id, "reason": "spam"},
        {"target": "user", "target_id": bob.id, "reason": "boring"},
        {"target": "user", "target_id": 0, "reason": "spam"},
        {"target": "user", "target_id": 2**40, "reason": "spam"},
        {"target": "user", "target_id": "bob", "reason": "spam"},
        {"target": "user", "target_id": bob.id, "reason": "spam", "details": "x" * 1001},
        {"target": "user", "reason": "spam"},
        {},
    ]
    for body in bad_bodies:
        r = await ann.client.post("/api/v1/reports", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "invalid"
    r = await ann.client.post("/api/v1/reports", content=b"not json")
    assert r.status_code == 422
    own = await report(ann, "user", ann.id)
    assert own.status_code == 422 and own.json()["error"]["code"] == "own"
    r = await client.post(
        "/api/v1/reports", json={"target": "user", "target_id": 1, "reason": "spam"}
    )
    assert r.status_code == 401
    assert (await client.get("/api/v1/reports/mine")).status_code == 401


async def test_one_open_report_per_reporter_and_target(people: MakePerson, mod: Person) -> None:
    ann, bob, carol = await people("ann"), await people("bob"), await people("carol")
    first = await filed(ann, "user", bob.id)
    again = await report(ann, "user", bob.id, "hate")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reported"
    # Someone else may report the same account, and the reporter may report something else.
    assert (await report(carol, "user", bob.id)).status_code == 201
    bob_show = await new_show(bob, live=False)
    assert (await report(ann, "show", bob_show)).status_code == 201
    # Once the report is closed, a new one may be filed.
    assert (await act(mod, first, "dismiss", "nothing wrong")).status_code == 200
    assert (await report(ann, "user", bob.id)).status_code == 201


async def test_reports_are_rate_limited_per_user(
    app: FastAPI, people: MakePerson, clock: FakeClock
) -> None:
    limit = app.state.onair.settings.reports_per_hour
    ann = await people("ann")
    targets = [await people(f"user{i}") for i in range(limit + 1)]
    for target in targets[:limit]:
        assert (await report(ann, "user", target.id)).status_code == 201
    r = await report(ann, "user", targets[limit].id)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    # Someone else is not held back by ann's reports.
    assert (await report(targets[0], "user", targets[limit].id)).status_code == 201
    clock.advance(3600 / limit)
    assert (await report(ann, "user", targets[limit].id)).status_code == 201


async def test_the_queue_shows_open_reports_oldest_first_with_their_targets(
    client: httpx.AsyncClient, people: MakePerson, mod: Person, clock: FakeClock
) -> None:
    host, troll = await people("host"), await people("troll")
    ann, bob = await people("ann"), await people("bob")
    show_id = await new_show(host, "Late Talk")
    message_id = await chat(troll, show_id, "you all <b>stink</b>")
    first = await filed(ann, "message", message_id, "harassment")
    clock.advance(60)
    second = await filed(bob, "message", message_id, "hate")
    clock.advance(60)
    third = await filed(ann, "show", show_id, "copyright")

    r = await mod.client.get("/api/v1/moderation/reports", params={"status": "open"})
    assert r.status_code == 200, r.text
    queue = r.json()
    assert [q["id"] for q in queue] == [first, second, third]
    top = queue[0]
    assert top["reason"] == "harassment" and top["reporter"]["username"] == "ann"
    assert top["message"]["text"] == "you all <b>stink</b>"
    assert top["message"]["author"]["username"] == "troll" and not top["message"]["deleted"]
    assert top["account"]["username"] == "troll" and top["account"]["banned_at"] is None
    assert top["show"]["title"] == "Late Talk" and top["show"]["status"] == "live"
    assert (top["others_open"], top["others_total"]) == (1, 1)
    show_case = queue[2]
    assert show_case["message"] is None and show_case["show"]["host"]["username"] == "host"
    assert show_case["account"]["username"] == "host" and show_case["others_open"] == 0

    assert (await act(mod, first, "dismiss", "banter")).status_code == 200
    # Both reports of the message closed together; the other one stays in the queue.
    assert [q["id"] for q in (await mod.client.get("/api/v1/moderation/reports")).json()] == [third]
    closed = (await mod.client.get("/api/v1/moderation/reports?status=dismissed")).json()
    assert sorted(c["id"] for c in closed) == [first, second]
    assert all(c["resolved_by"] == mod.id and c["resolved_at"] for c in closed)
    assert (await mod.client.get("/api/v1/moderation/reports?status=lost")).status_code == 422
    assert (await mod.client.get("/api/v1/moderation/reports?limit=0")).status_code == 422

    assert (await ann.client.get("/api/v1/moderation/reports")).status_code == 403
    assert (await client.get("/api/v1/moderation/reports")).status_code == 401
