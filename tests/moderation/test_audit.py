"""The audit log as admins read it: every action with who, what, why and when, filtered, paged."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from onair.clock import FakeClock
from tests.moderation.people import MakePerson, Person, act, chat, filed, new_show, on_user


async def _log(admin: Person, **params: Any) -> list[dict[str, Any]]:
    r = await admin.client.get("/api/v1/moderation/audit", params=params)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()
    return entries


async def test_the_log_lists_every_action_newest_first_and_filters(
    app: FastAPI, people: MakePerson, mod: Person, admin: Person, clock: FakeClock
) -> None:
    host, troll, ann = await people("host"), await people("troll"), await people("ann")
    show_id = await new_show(host, "Night Talk")
    message_id = await chat(troll, show_id, "nasty")
    r1 = await filed(ann, "message", message_id, "harassment")
    r2 = await filed(ann, "user", troll.id, "spam")
    r3 = await filed(ann, "show", show_id, "copyright")

    await act(mod, r1, "remove_message", "harassing the host")  # 12:00
    clock.advance(3600)
    await act(mod, r2, "warn", "first warning")  # 13:00
    clock.advance(3600)
    await act(admin, r3, "end_show", "unlicensed")  # 14:00
    clock.advance(3600)
    await on_user(mod, troll.id, "suspend", "kept at it", hours=12)  # 15:00
    clock.advance(3600)
    await admin.client.put("/api/v1/rules", json={"body": "New rules."})  # 16:00

    entries = await _log(admin)
    assert [e["action"] for e in entries] == [
        "rules.edit",
        "user.suspend",
        "show.end",
        "user.warn",
        "chat.delete",
    ]
    suspend = entries[1]
    assert suspend["actor"]["username"] == "mod" and suspend["target_user"]["username"] == "troll"
    assert suspend["reason"] == "kept at it" and suspend["created_at"] == "2026-01-01T15:00:00Z"
    assert suspend["details"]["hours"] == 12 and suspend["report_id"] is None
    removed = entries[4]
    assert (removed["message_id"], removed["show_id"], removed["report_id"]) == (
        message_id,
        show_id,
        r1,
    )
    assert removed["details"]["text"] == "nasty"
    ended = entries[2]
    assert ended["actor"]["username"] == "boss" and ended["target_user"]["username"] == "host"

    def actions(found: list[dict[str, Any]]) -> list[str]:
        return [e["action"] for e in found]

    assert actions(await _log(admin, actor="mod")) == ["user.suspend", "user.warn", "chat.delete"]
    assert actions(await _log(admin, actor="BOSS")) == ["rules.edit", "show.end"]
    assert actions(await _log(admin, action="user.warn")) == ["user.warn"]
    assert actions(await _log(admin, target_user="host")) == ["show.end"]
    assert actions(await _log(admin, show_id=show_id)) == ["show.end", "chat.delete"]
    assert actions(
        await _log(admin, since="2026-01-01T13:00:00Z", until="2026-01-01T14:00:00Z")
    ) == [
        "show.end",
        "user.warn",
    ]
    # A time without a zone is UTC; one with a zone is converted.
    assert actions(await _log(admin, since="2026-01-01T15:00:00")) == ["rules.edit", "user.suspend"]
    assert actions(await _log(admin, until="2026-01-01T13:30:00+01:00")) == ["chat.delete"]
    assert await _log(admin, actor="nobody") == []
    assert actions(await _log(admin, actor="mod", target_user="troll")) == [
        "user.suspend",
        "user.warn",
        "chat.delete",
    ]

    page_one = await _log(admin, limit=2)
    page_two = await _log(admin, limit=2, before_id=page_one[-1]["id"])
    page_three = await _log(admin, limit=2, before_id=page_two[-1]["id"])
    assert actions(page_one + page_two + page_three) == actions(entries)


async def test_only_admins_read_the_log(
    client: httpx.AsyncClient, people: MakePerson, mod: Person, admin: Person
) -> None:
    listener = await people("ann")
    assert (await client.get("/api/v1/moderation/audit")).status_code == 401
    for person in (listener, mod):
        r = await person.client.get("/api/v1/moderation/audit")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"since": "yesterday"},
        {"show_id": 0},
        {"show_id": 2**40},
        {"before_id": "x"},
        {"actor": "x" * 33},
    ):
        r = await admin.client.get("/api/v1/moderation/audit", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "invalid"
