"""Chat as hosts, listeners and the crew use it over the REST API: rules, filters, moderation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from onair.app import create_app
from onair.clock import FakeClock
from onair.moderation.models import AuditEntry
from onair.rooms.chat import hold_reason
from onair.rooms.models import ChatMessage
from onair.settings import Settings
from tests.conftest import sign_up


@asynccontextmanager
async def user(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        if name:
            await sign_up(c, name)
        yield c


async def new_show(host: httpx.AsyncClient, *, live: bool = True) -> str:
    show = (await host.post("/api/v1/shows", json={"title": "Talk"})).json()
    if live:
        assert (await host.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return f"/api/v1/shows/{show['id']}"


async def uid(c: httpx.AsyncClient) -> int:
    return int((await c.get("/api/v1/accounts/me")).json()["id"])


async def say(c: httpx.AsyncClient, base: str, text: str) -> httpx.Response:
    return await c.post(f"{base}/chat", json={"text": text})


async def test_messages_are_stored_and_read_back_by_anyone(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "") as anon:
        base = await new_show(host, live=False)  # chat opens before the show goes live
        r = await say(ann, base, "  hello <b>there</b>  ")
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["text"] == "hello <b>there</b>" and sent["user"]["username"] == "ann"
        assert (await say(host, base, "welcome!")).status_code == 201
        page = (await anon.get(f"{base}/chat")).json()["messages"]
        assert [m["text"] for m in page] == ["hello <b>there</b>", "welcome!"]
        assert (await say(anon, base, "me too")).status_code == 401
    async with app.state.onair.sessions() as db:
        stored = (await db.scalars(select(ChatMessage).order_by(ChatMessage.id))).all()
        assert [m.text for m in stored] == ["hello <b>there</b>", "welcome!"]


async def test_bad_messages_get_clear_refusals(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await new_show(host)
        assert (await say(ann, base, "")).status_code == 422
        assert (await say(ann, base, " \x00\x07 ")).json()["error"]["code"] == "invalid"
        assert (await say(ann, base, "x" * 501)).status_code == 422
        r = await ann.post(f"{base}/chat", content=b"{not json", headers={"content-type": "x"})
        assert r.status_code == 422
        assert (await say(ann, "/api/v1/shows/9999", "hi")).status_code == 404
        assert (await host.post(f"{base}/end")).status_code == 200
        r = await say(ann, base, "too late")
        assert r.status_code == 409 and r.json()["error"]["code"] == "show_ended"


async def test_chat_is_rate_limited_three_per_two_seconds(app: FastAPI, clock: FakeClock) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await new_show(host)
        for i in range(3):
            assert (await say(ann, base, f"m{i}")).status_code == 201
        r = await say(ann, base, "m3")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["retry_after"] > 0
        clock.advance(0.7)  # one token back after 2/3 s
        assert (await say(ann, base, "m4")).status_code == 201


async def test_slow_mode_spaces_a_listeners_messages_but_not_the_crews(
    app: FastAPI, clock: FakeClock
) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await new_show(host)
        assert (
            await ann.patch(f"{base}/chat/settings", json={"slow_mode_s": 30})
        ).status_code == 403
        r = await host.patch(f"{base}/chat/settings", json={"slow_mode_s": 30})
        assert r.json()["slow_mode_s"] == 30
        assert (await say(ann, base, "one")).status_code == 201
        clock.advance(10)
        r = await say(ann, base, "two")
        assert r.status_code == 429 and r.json()["error"]["code"] == "slow_mode"
        assert 19 <= float(r.headers["retry-after"]) <= 20
        assert (await say(host, base, "hosts are not slowed")).status_code == 201
        assert (await say(host, base, "at all")).status_code == 201
        clock.advance(20)
        assert (await say(ann, base, "two")).status_code == 201
        assert (
            await host.patch(f"{base}/chat/settings", json={"slow_mode_s": 0})
        ).status_code == 200
        assert (await say(ann, base, "three")).status_code == 201


async def test_slow_mode_holds_on_every_node_and_across_a_restart(
    app: FastAPI, settings: Settings, clock: FakeClock
) -> None:
    """Two nodes on one database (or this one restarted): a listener's second message is
    slowed whichever node it goes to."""
    other = create_app(settings, clock)
    try:
        async with user(app, "host") as host, user(app, "ann") as ann:
            base = await new_show(host, live=False)
            await host.patch(f"{base}/chat/settings", json={"slow_mode_s": 30})
            transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies=ann.cookies
            ) as ann_there:
                assert (await say(ann, base, "one")).status_code == 201
                clock.advance(10)
                r = await say(ann_there, base, "two")
                assert r.status_code == 429 and r.json()["error"]["code"] == "slow_mode"
                assert 19 <= float(r.headers["retry-after"]) <= 20
                clock.advance(20)
                assert (await say(ann_there, base, "two")).status_code == 201
                assert (await say(ann, base, "three")).status_code == 429
    finally:
        await other.state.onair.stations.aclose()
        await other.state.onair.engine.dispose()


def test_the_filters_hold_blocked_words_and_links() -> None:
    words = ["badword", "two words"]
    assert hold_reason("a BÄDWORD here", blocked_words=words, hold_links=True) == "blocked_word"
    assert hold_reason("say two  words", blocked_words=words, hold_links=True) is None
    assert hold_reason("say two words!", blocked_words=words, hold_links=True) == "blocked_word"
    assert hold_reason("badwordy is fine", blocked_words=words, hold_links=False) is None
    for link in ("see https://x.example/a", "www.spam.test", "buy at cheap-pills.com now"):
        assert hold_reason(link, blocked_words=[], hold_links=True) == "link"
        assert hold_reason(link, blocked_words=[], hold_links=False) is None
    for fine in ("e.g. this", "3.14 is pi", "end.Then"):
        assert hold_reason(fine, blocked_words=[], hold_links=True) is None


async def test_held_messages_wait_for_the_crew(settings: Settings, app: FastAPI) -> None:
    settings.blocked_words = "rude"
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await new_show(host)
        r = await say(ann, base, "you are RUDE")
        assert r.status_code == 201 and r.json()["held"] == "blocked_word"
        r = await say(ann, base, "visit www.example.com")
        assert r.json()["held"] == "link"
        assert (await say(host, base, "crew links pass: www.onair.test")).json()["held"] is None
        public = (await bob.get(f"{base}/chat")).json()["messages"]
        assert [m["text"] for m in public] == ["crew links pass: www.onair.test"]
        assert (await bob.get(f"{base}/chat?held=true")).status_code == 403
        held = (await host.get(f"{base}/chat?held=true")).json()["messages"]
        assert [m["held"] for m in held] == ["blocked_word", "link"]
        assert (await bob.post(f"{base}/chat/{held[1]['id']}/release")).status_code == 403
        assert (await host.post(f"{base}/chat/{held[1]['id']}/release")).status_code == 200
        public = (await bob.get(f"{base}/chat")).json()["messages"]
        assert [m["text"] for m in public] == [
            "visit www.example.com",
            "crew links pass: www.onair.test",
        ]


async def test_young_accounts_read_but_do_not_write(
    settings: Settings, app: FastAPI, clock: FakeClock
) -> None:
    settings.chat_min_account_age_minutes = 60
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await new_show(host)
        r = await say(ann, base, "first!")
        assert r.status_code == 403 and r.json()["error"]["code"] == "account_too_new"
        assert (await say(host, base, "the crew is exempt")).status_code == 201
        clock.advance(3601)
        assert (await say(ann, base, "first!")).status_code == 201


async def test_deleting_and_pinning(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await new_show(host)
        a = (await say(ann, base, "pin me")).json()["id"]
        b = (await say(bob, base, "spam spam")).json()["id"]
        assert (await ann.put(f"{base}/chat/pin", json={"message_id": a})).status_code == 403
        r = await host.put(f"{base}/chat/pin", json={"message_id": a})
        assert r.json()["pinned"]["text"] == "pin me"
        assert (await bob.get(f"{base}/chat/settings")).json()["pinned"]["id"] == a
        assert (await ann.delete(f"{base}/chat/{b}")).status_code == 403  # not hers
        assert (await host.delete(f"{base}/chat/{b}?reason=spam")).status_code == 204
        assert (await bob.delete(f"{base}/chat/{a}")).status_code == 403
        assert (await ann.delete(f"{base}/chat/{a}")).status_code == 204  # her own
        assert (await bob.get(f"{base}/chat")).json()["messages"] == []
        assert (await bob.get(f"{base}/chat/settings")).json()["pinned"] is None
        assert (await host.put(f"{base}/chat/pin", json={"message_id": a})).status_code == 409
        assert (await host.delete(f"{base}/chat/424242")).status_code == 404
    async with app.state.onair.sessions() as db:
        entries = (await db.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        assert [(e.action, e.reason) for e in entries] == [
            ("chat.pin", ""),
            ("chat.delete", "spam"),
        ]
        assert entries[1].details["text"] == "spam spam"


async def test_timeouts_removals_and_bans(app: FastAPI, clock: FakeClock) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await new_show(host)
        ann_id, host_id = await uid(ann), await uid(host)
        sanction = {"user_id": ann_id, "kind": "timeout", "minutes": 5, "reason": "cool off"}
        assert (await bob.post(f"{base}/sanctions", json=sanction)).status_code == 403
        r = await host.post(f"{base}/sanctions", json={**sanction, "user_id": host_id})
        assert r.status_code == 409
        r = await host.post(f"{base}/sanctions", json={**sanction, "minutes": None})
        assert r.status_code == 422
        r = await host.post(f"{base}/sanctions", json=sanction)
        assert r.status_code == 201 and r.json()["kind"] == "timeout"
        r = await say(ann, base, "hey")
        assert r.status_code == 403 and r.json()["error"]["code"] == "timed_out"
        clock.advance(301)
        assert (await say(ann, base, "back")).status_code == 201

        r = await host.post(f"{base}/sanctions", json={**sanction, "kind": "removed"})
        assert r.status_code == 201
        assert (await say(ann, base, "hey")).json()["error"]["code"] == "removed"
        r = await ann.post(f"{base}/stage/call", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "removed"
        listed = (await host.get(f"{base}/sanctions")).json()["sanctions"]
        assert [s["kind"] for s in listed] == ["removed"]
        assert (await host.delete(f"{base}/sanctions/{listed[0]['id']}")).status_code == 204
        assert (await say(ann, base, "thanks")).status_code == 201

        bob_id = await uid(bob)
        ban = {"user_id": bob_id, "kind": "banned", "reason": "hate"}
        assert (await host.post(f"{base}/sanctions", json=ban)).status_code == 201
        assert (await host.post(f"{base}/end")).status_code == 200
        other = await new_show(host, live=False)  # the ban follows the host's shows
        assert (await say(bob, other, "hi")).json()["error"]["code"] == "banned_from_host"
        async with user(app, "carol") as carol:
            elsewhere = await new_show(carol, live=False)
            assert (await say(bob, elsewhere, "hi")).status_code == 201
    async with app.state.onair.sessions() as db:
        actions = [e.action for e in (await db.scalars(select(AuditEntry).order_by(AuditEntry.id)))]
        assert actions == ["room.timeout", "room.removed", "room.lift", "room.banned"]


async def test_reactions_need_an_account_and_a_known_emoji(app: FastAPI, clock: FakeClock) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "") as anon:
        base = await new_show(host)
        assert (await anon.post(f"{base}/reactions", json={"emoji": "🔥"})).status_code == 401
        assert (await ann.post(f"{base}/reactions", json={"emoji": "💩"})).status_code == 422
        for _ in range(20):
            assert (await ann.post(f"{base}/reactions", json={"emoji": "🔥"})).status_code == 202
        r = await ann.post(f"{base}/reactions", json={"emoji": "🔥"})
        assert r.status_code == 429 and "retry-after" in r.headers
