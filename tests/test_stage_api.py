"""The stage's rules over the API: who may move whom, limits, refusals, and what is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from onair.stage.models import StageEntry, StageState
from tests.conftest import sign_up


@asynccontextmanager
async def user(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await sign_up(c, name)
        yield c


async def live_show(host: httpx.AsyncClient) -> str:
    show = (await host.post("/api/v1/shows", json={"title": "Phone-in"})).json()
    assert (await host.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    return f"/api/v1/shows/{show['id']}"


async def caller_id(c: httpx.AsyncClient) -> int:
    me = (await c.get("/api/v1/accounts/me")).json()
    return int(me["id"])


async def test_the_stage_refuses_moves_out_of_turn(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await live_show(host)
        ann_id = await caller_id(ann)
        assert (await host.post(f"{base}/stage/call", json={})).json()["error"]["code"] == "is_crew"
        r = await ann.post(f"{base}/stage/call", json={"topic": "x" * 141})
        assert r.status_code == 422
        r = await ann.post(f"{base}/stage/call", json={"topic": "  hello  "})
        assert r.status_code == 201 and r.json()["me"]["call"]["topic"] == "hello"
        assert (await ann.post(f"{base}/stage/call", json={})).status_code == 409
        r = await host.post(f"{base}/stage/callers/{ann_id}/air")  # not screened yet
        assert r.status_code == 409 and r.json()["error"]["code"] == "wrong_state"
        assert (await host.post(f"{base}/stage/callers/999/screen")).status_code == 404
        assert (await bob.post(f"{base}/stage/callers/{ann_id}/drop")).status_code == 403
        assert (
            await bob.patch(f"{base}/stage/callers/{ann_id}", json={"muted": True})
        ).status_code == 403
        assert (await bob.delete(f"{base}/stage/call")).status_code == 404  # no call to end
        anonymous = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        async with anonymous:
            assert (await anonymous.post(f"{base}/stage/call", json={})).status_code == 401
            public = (await anonymous.get(f"{base}/stage")).json()
            assert public["waiting"] == [ann_id] and public["me"] is None
        assert (await host.get("/api/v1/shows/4242/stage")).status_code == 404
        ended = (await host.post("/api/v1/shows", json={"title": "Later"})).json()
        assert (await host.get(f"/api/v1/shows/{ended['id']}/stage")).status_code == 409


async def test_every_move_is_stored_and_a_restarted_studio_puts_callers_back_in_the_queue(
    app: FastAPI,
) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await live_show(host)
        ann_id = await caller_id(ann)
        await ann.post(f"{base}/stage/call", json={"topic": "the news"})
        r = await host.post(f"{base}/stage/callers/{ann_id}/screen")
        assert r.json()["screening"][0]["user_id"] == ann_id
        r = await ann.patch(f"{base}/stage/call", json={"muted": True})
        assert r.json()["me"]["call"]["self_muted"] is True
        onair = app.state.onair
        async with onair.sessions() as db:
            entry = await db.scalar(select(StageEntry).where(StageEntry.user_id == ann_id))
            assert entry is not None
            assert entry.state is StageState.screening and entry.topic == "the news"
            assert entry.self_muted is True and entry.screener_id is not None
        show_id = int(base.rsplit("/", 1)[1])
        await onair.stations.stop(show_id, ended=False)  # as when the node restarts
        await onair.stations.start(show_id)
        me = (await ann.get(f"{base}/stage")).json()["me"]
        assert me["state"] == "requested" and me["call"]["reason"] == "studio_restarted"
        assert me["call"]["topic"] == "the news"


async def test_a_caller_removed_while_no_studio_ran_is_not_back_on_the_stage_it_loads(
    app: FastAPI,
) -> None:
    """The studio's node died with a caller on air; the host removed them before another
    node took the show over. The word never reached a studio, so the new one must see it."""
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await live_show(host)
        show_id = int(base.rsplit("/", 1)[1])
        ann_id = await caller_id(ann)
        for c in (ann, bob):
            assert (await c.post(f"{base}/stage/call", json={})).status_code == 201
        assert (await host.post(f"{base}/stage/callers/{ann_id}/screen")).status_code == 200
        assert (await host.post(f"{base}/stage/callers/{ann_id}/air")).status_code == 200
        onair = app.state.onair
        await onair.stations.stop(show_id, ended=False)  # the node is gone
        r = await host.post(f"{base}/sanctions", json={"user_id": ann_id, "kind": "removed"})
        assert r.status_code == 201, r.text
        await onair.stations.start(show_id)  # another node takes the show over
        stage = (await host.get(f"{base}/stage")).json()
        assert stage["on_air"] == [] and stage["waiting"] == [await caller_id(bob)]
        async with onair.sessions() as db:
            entry = await db.scalar(select(StageEntry).where(StageEntry.user_id == ann_id))
            assert entry is not None
            assert (entry.state, entry.reason) == (StageState.dropped, "removed")


async def test_at_most_max_on_air_voices(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        base = await live_show(host)
        show_id = int(base.rsplit("/", 1)[1])
        app.state.onair.stations.get(show_id).stage.max_on_air = 1
        for c in (ann, bob):
            await c.post(f"{base}/stage/call", json={})
        ann_id, bob_id = await caller_id(ann), await caller_id(bob)
        for who in (ann_id, bob_id):
            assert (await host.post(f"{base}/stage/callers/{who}/screen")).status_code == 200
            if who == ann_id:
                assert (await host.post(f"{base}/stage/callers/{who}/air")).status_code == 200
        r = await host.post(f"{base}/stage/callers/{bob_id}/air")
        assert r.status_code == 409 and r.json()["error"]["code"] == "stage_full"
        view = (await host.get(f"{base}/stage")).json()
        assert [c["user_id"] for c in view["on_air"]] == [ann_id]
        # Screening someone else sent nobody back: Bob is the one on the private line.
        assert [c["user_id"] for c in view["screening"]] == [bob_id]


async def test_hand_raises_are_rate_limited(app: FastAPI) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await live_show(host)
        codes = []
        for _ in range(4):
            r = await ann.post(f"{base}/stage/call", json={})
            codes.append(r.status_code)
            await ann.delete(f"{base}/stage/call")
        assert codes == [201, 201, 201, 429]


async def test_co_host_invitations_are_for_the_host_and_the_invitee_to_see(
    app: FastAPI,
) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann, user(app, "bob") as bob:
        show = (await host.post("/api/v1/shows", json={"title": "Duo"})).json()
        base = f"/api/v1/shows/{show['id']}"
        assert (await host.post(f"{base}/cohosts", json={"username": "nobody"})).status_code == 404
        assert (await host.post(f"{base}/cohosts", json={"username": "host"})).status_code == 409
        assert (await host.post(f"{base}/cohosts", json={"username": "ann"})).status_code == 201
        assert (await host.post(f"{base}/cohosts", json={"username": "ann"})).status_code == 409
        assert [c["username"] for c in (await host.get(f"{base}/cohosts")).json()] == ["ann"]
        assert [c["accepted"] for c in (await ann.get(f"{base}/cohosts")).json()] == [False]
        assert (await bob.get(f"{base}/cohosts")).json() == []
        assert (await bob.post(f"{base}/cohosts/accept")).status_code == 404
        assert (await ann.post(f"{base}/cohosts/accept")).status_code == 200
        assert [c["username"] for c in (await bob.get(f"{base}/cohosts")).json()] == ["ann"]
        # A co-host runs the queue; only the host removes co-hosts, or they step down.
        r = await ann.get(f"{base}/queue")
        assert r.status_code == 200
        ann_id = await caller_id(ann)
        assert (await bob.delete(f"{base}/cohosts/{ann_id}")).status_code == 403
        assert (await ann.delete(f"{base}/cohosts/{ann_id}")).status_code == 200
        assert (await host.get(f"{base}/cohosts")).json() == []


@pytest.mark.parametrize("path", ["screen", "air", "queue", "drop"])
async def test_a_listener_cannot_move_anyone(app: FastAPI, path: str) -> None:
    async with user(app, "host") as host, user(app, "ann") as ann:
        base = await live_show(host)
        await ann.post(f"{base}/stage/call", json={})
        ann_id = await caller_id(ann)
        r = await ann.post(f"{base}/stage/callers/{ann_id}/{path}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
