"""The community rules over the API: anyone reads them, admins edit them, every edit is kept."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from onair.clock import FakeClock
from onair.moderation.models import CommunityRules
from tests.moderation.people import MakePerson, Person, audit_rows


async def test_default_rules_until_an_admin_edits_them(
    client: httpx.AsyncClient, app: FastAPI, admin: Person, clock: FakeClock
) -> None:
    r = await client.get("/api/v1/rules")
    assert r.status_code == 200
    assert r.json()["updated_at"] is None and r.json()["body"].startswith("Be kind.")
    app.state.onair.settings.community_rules = "The operator's own rules."
    assert (await client.get("/api/v1/rules")).json()["body"] == "The operator's own rules."

    r = await admin.client.put("/api/v1/rules", json={"body": "  One.\r\n\r\nTwo.  "})
    assert r.status_code == 200, r.text
    assert r.json() == {"body": "One.\n\nTwo.", "updated_at": "2026-01-01T12:00:00Z"}
    clock.advance(60)
    await admin.client.put("/api/v1/rules", json={"body": "Three."})
    assert (await client.get("/api/v1/rules")).json()["body"] == "Three."

    async with app.state.onair.sessions() as db:
        kept = (await db.scalars(select(CommunityRules).order_by(CommunityRules.id))).all()
    assert [k.body for k in kept] == ["One.\n\nTwo.", "Three."]
    assert all(k.updated_by == admin.id for k in kept)
    edits = [e for e in await audit_rows(app) if e.action == "rules.edit"]
    assert [e.actor_id for e in edits] == [admin.id, admin.id]
    assert edits[0].details == {"rules_id": kept[0].id, "length": 10}


async def test_only_admins_edit_the_rules(
    client: httpx.AsyncClient, people: MakePerson, mod: Person, admin: Person
) -> None:
    listener = await people("ann")
    assert (await client.put("/api/v1/rules", json={"body": "x"})).status_code == 401
    for person in (listener, mod):
        r = await person.client.put("/api/v1/rules", json={"body": "Mine now."})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for body in ({"body": ""}, {"body": "   \n  "}, {"body": "x" * 20_001}, {}, {"body": 5}):
        r = await admin.client.put("/api/v1/rules", json=body)
        assert r.status_code == 422, (body, r.text)
    assert (await client.get("/api/v1/rules")).json()["updated_at"] is None
