"""Moderation reaches a show's studio through any node: a user removed from the room leaves
the stage where the studio runs, and a moderator ending a show stops its studio there."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from onair.db.base import make_engine
from tests.cluster import host, new_show, tone_songs, world

pytestmark = pytest.mark.postgres


async def _sql(url: str, statement: str, **values: object) -> list[dict[str, object]]:
    engine = make_engine(url)
    try:
        async with engine.begin() as db:
            result = await db.execute(text(statement), values)
            return [dict(row._mapping) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def _queue(client: httpx.Client, show_id: int) -> list[object]:
    r = client.get(f"/api/v1/shows/{show_id}/stage")
    assert r.status_code == 200, r.text
    return [c["username"] for c in r.json()["queue"]]


def test_moderation_through_a_node_without_the_studio_reaches_it(
    tmp_path: Path, postgres_url: str
) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.start("a", "b")
        on_a = stack.enter_context(host(cluster.nodes["a"].url, "host_a"))
        show_id = new_show(on_a, "Call-in Hour", "concert")
        assert on_a.post(f"/api/v1/shows/{show_id}/live").status_code == 200, on_a.text
        owner = cluster.wait_owner(show_id)
        relay = "b" if owner == "a" else "a"
        url = cluster.nodes[relay].url
        ann = stack.enter_context(host(url, "ann"))
        mod = stack.enter_context(host(url, "mod"))
        asyncio.run(
            _sql(postgres_url, "UPDATE users SET role = 'moderator' WHERE username = 'mod'")
        )

        # Ann calls in; the host sees her in the queue (the stage lives with the studio).
        assert ann.post(f"/api/v1/shows/{show_id}/stage/call", json={}).status_code == 201
        assert _queue(on_a, show_id) == ["ann"]
        ann_id = ann.get("/api/v1/accounts/me").json()["id"]

        # The moderator removes her from the room through the node without the studio.
        r = mod.post(
            f"/api/v1/shows/{show_id}/sanctions", json={"user_id": ann_id, "kind": "removed"}
        )
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 5
        while _queue(on_a, show_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _queue(on_a, show_id) == []

        # Another listener reports the show (Ann is out of the room now).
        bob = stack.enter_context(host(url, "bob"))
        r = bob.post(
            "/api/v1/reports", json={"target": "show", "target_id": show_id, "reason": "spam"}
        )
        assert r.status_code == 201, r.text
        report_id = r.json()["id"]
        with (
            httpx.Client(timeout=httpx.Timeout(15, read=10)) as http,
            http.stream("GET", f"{url}/listen/{show_id}.mp3") as stream,
        ):
            assert stream.status_code == 200
            chunks = stream.iter_raw()
            assert next(chunks)  # the program, proxied from the owner
            r = mod.post(
                f"/api/v1/moderation/reports/{report_id}/actions",
                json={"action": "end_show", "reason": "unlicensed broadcast"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["show"]["status"] == "ended"
            ended = False
            with contextlib.suppress(httpx.HTTPError):
                for _ in chunks:  # the studio stopped where it ran: the stream ends
                    pass
                ended = True
            assert ended
        assert cluster.owner(show_id) is None
        [row] = asyncio.run(_sql(postgres_url, "SELECT status FROM shows WHERE id = :s", s=show_id))
        assert row["status"] == "ended"
        r = httpx.get(f"{cluster.nodes[owner].url}/listen/{show_id}.mp3", timeout=15)
        assert r.status_code == 404
