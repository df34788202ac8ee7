"""Publishing from the host's side, through the API: what is refused and why, a replay that
fails (a show of nothing but music has no talk) and is published again once it can work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import Role, User
from onair.catalog.models import Licence
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.moderation.models import AuditEntry
from onair.replays import service
from onair.replays.models import Replay, ReplayKind, ReplayState
from onair.royalties.models import PlayLog
from onair.shows.models import Show, ShowStatus
from tests.conftest import sign_up

pytestmark = pytest.mark.media


async def _show(client: httpx.AsyncClient, title: str = "Morning Talk") -> int:
    r = await client.post("/api/v1/shows", json={"title": title})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_a_replay_needs_an_ended_recorded_show_and_a_kind(client: httpx.AsyncClient) -> None:
    await sign_up(client, "host")
    show = await _show(client)
    path = f"/api/v1/shows/{show}/replays"
    r = await client.post(path, json={"kind": "talk"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "show_not_ended"
    for body in ({"kind": "everything"}, {}, {"kind": None}):
        r = await client.post(path, json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", body
    # Ended without ever going on air: nothing was recorded.
    assert (await client.post(f"/api/v1/shows/{show}/end")).status_code == 200
    r = await client.post(path, json={"kind": "talk"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_recorded"
    options = (await client.get(f"{path}/options")).json()
    assert options == {
        "recorded_s": 0.0,
        "talk_allowed": False,
        "full_allowed": False,
        "full_blocked_by": [],
    }
    page = (await client.get(f"/shows/{show}")).text
    assert "This show was not recorded" in page
    assert (await client.get("/api/v1/shows/999999/replays")).status_code == 404
    assert (await client.get("/api/v1/replays/999999")).status_code == 404
    assert (await client.get("/replays/999999.mp3")).status_code == 404
    assert (await client.get("/hosts/999999/podcast.xml")).status_code == 404
    assert (await client.get("/hosts/999999/podcast.jpg")).status_code == 404


async def test_a_failed_replay_says_why_and_can_be_published_again(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    show = await _show(client)
    assert (await client.post(f"/api/v1/shows/{show}/live")).status_code == 200
    await asyncio.sleep(1.0)  # the studio runs on the test's loop: a second of program
    assert (await client.post(f"/api/v1/shows/{show}/end")).status_code == 200
    async with app.state.onair.sessions() as db:
        (track,) = await CatalogWriter(db, clock).write(
            [TrackInput(source="test", source_key="t:1", title="Wall", artists=("Band",))]
        )
        # The whole show was one song (written by hand: the studio had no file to play). The
        # studio's program runs on real time, not the test's clock.
        now = datetime.now(UTC)
        db.add(
            PlayLog(
                show_id=show,
                track_id=track.id,
                started_at=now - timedelta(minutes=5),
                ended_at=now + timedelta(minutes=5),
                seconds_played=600.0,
            )
        )
        await db.commit()
    path = f"/api/v1/shows/{show}/replays"
    options = (await client.get(f"{path}/options")).json()
    assert 0.5 < options["recorded_s"] < 3.0
    assert options["full_blocked_by"] == [{"id": track.id, "title": "Wall", "artists": ["Band"]}]
    r = await client.post(path, json={"kind": "talk"})
    assert r.status_code == 202, r.text
    replay_id = r.json()["id"]
    await app.state.replays.wait(replay_id)
    failed = (await client.get(f"/api/v1/replays/{replay_id}")).json()
    assert failed["state"] == "failed" and "empty" in failed["error"]
    assert failed["audio_url"] is None
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as anonymous:
        assert (await anonymous.get(path)).json() == []
        assert (await anonymous.get(f"/api/v1/replays/{replay_id}")).status_code == 404
    page = (await client.get(f"/shows/{show}")).text
    assert "This replay failed" in page and "Publish talk replay" in page

    async with app.state.onair.sessions() as db:
        await db.execute(delete(PlayLog).where(PlayLog.show_id == show))
        await db.commit()
    r = await client.post(path, json={"kind": "talk"})
    assert r.status_code == 202, r.text
    await app.state.replays.wait(r.json()["id"])
    ready = (await client.get(f"/api/v1/replays/{r.json()['id']}")).json()
    assert ready["state"] == "ready" and ready["duration_s"] == pytest.approx(
        options["recorded_s"], abs=0.05
    )
    listed = (await client.get(path)).json()
    assert [x["id"] for x in listed] == [ready["id"]], "the failed try was replaced"
    audio = await client.get(ready["audio_url"])
    assert audio.status_code == 200 and len(audio.content) == ready["bytes"]


async def test_licences_and_feed_queries_on_each_database(db: AsyncSession) -> None:
    """The queries behind the publish check and the feed, on SQLite and PostgreSQL."""
    clock = FakeClock()
    host = User(
        username="h",
        display_name="H",
        email="h@example.org",
        password_hash="x",
        created_at=clock.now(),
    )
    db.add(host)
    await db.flush()
    show = Show(
        host_id=host.id,
        title="S",
        status=ShowStatus.ended,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    db.add(show)
    await db.flush()
    free, tied, unknown, lapsed, early = await CatalogWriter(db, clock).write(
        [
            TrackInput(source="t", source_key=f"t:{n}", title=n, artists=("A", "B"))
            for n in ("Free", "Tied", "Unknown", "Lapsed", "Early")
        ]
    )
    licences = {licence.track_id: licence for licence in await db.scalars(select(Licence))}
    licences[free.id].on_demand_allowed = True
    licences[tied.id].on_demand_allowed = False
    today = clock.now().date()
    for track, starts, ends in (
        (free, today - timedelta(days=1), today),  # the window's last day still counts
        (lapsed, None, today - timedelta(days=1)),
        (early, today + timedelta(days=1), None),
    ):
        licence = licences[track.id]
        licence.on_demand_allowed, licence.starts_on, licence.ends_on = True, starts, ends
    await db.delete(licences[unknown.id])  # no licence on file: not licensed on demand either
    for track in (free, tied, tied, unknown, lapsed, early):  # one played twice, named once
        db.add(PlayLog(show_id=show.id, track_id=track.id, started_at=clock.now()))
    for kind, state in (
        (ReplayKind.talk, ReplayState.ready),
        (ReplayKind.full, ReplayState.failed),
    ):
        db.add(
            Replay(
                show_id=show.id,
                kind=kind,
                state=state,
                bytes=1,
                duration_s=1.0,
                chapters="[]",
                created_at=clock.now(),
                ready_at=clock.now(),
            )
        )
    await db.commit()
    blocked = await service.blocking_tracks(db, show.id, today)
    assert [t.title for t in blocked] == ["Tied", "Unknown", "Lapsed", "Early"]
    assert blocked[0].artists == ("A", "B")
    episodes = await service.host_replays(db, host.id)
    assert [(r.kind, s.id) for r, s in episodes] == [(ReplayKind.talk, show.id)]


async def _recorded_show(client: httpx.AsyncClient) -> int:
    show = await _show(client)
    assert (await client.post(f"/api/v1/shows/{show}/live")).status_code == 200
    await asyncio.sleep(1.0)
    assert (await client.post(f"/api/v1/shows/{show}/end")).status_code == 200
    return show


async def test_a_moderator_takes_a_replay_down_and_the_audit_log_says_so(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    host = await sign_up(client, "host")
    show = await _recorded_show(client)
    r = await client.post(f"/api/v1/shows/{show}/replays", json={"kind": "talk"})
    await app.state.replays.wait(r.json()["id"])
    replay = (await client.get(f"/api/v1/replays/{r.json()['id']}")).json()
    assert replay["state"] == "ready"
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as mod:
        moderator = await sign_up(mod, "mod")
        async with app.state.onair.sessions() as db:
            user = await db.get(User, moderator["id"])
            assert user is not None
            user.role = Role.moderator
            await db.commit()
        # A moderator may take it down, not publish in the host's name.
        r = await mod.post(f"/api/v1/shows/{show}/replays", json={"kind": "full"})
        assert r.status_code == 403
        assert (await mod.delete(f"/api/v1/replays/{replay['id']}")).status_code == 204
    async with app.state.onair.sessions() as db:
        entries = list(await db.scalars(select(AuditEntry)))
    assert [(e.action, e.actor_id, e.target_user_id, e.show_id) for e in entries] == [
        ("replay.unpublish", moderator["id"], host["id"], show)
    ]
    assert entries[0].details == {"replay_id": replay["id"], "kind": "talk"}
    assert not list((app.state.onair.settings.replays_path / f"show-{show}").glob("*.mp3"))


async def test_an_encoding_a_stopped_node_left_behind_is_finished_on_start(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    show = await _recorded_show(client)
    async with app.state.onair.sessions() as db:
        left = Replay(
            show_id=show,
            kind=ReplayKind.talk,
            state=ReplayState.processing,
            bytes=0,
            duration_s=0.0,
            chapters="[]",
            created_at=clock.now(),
        )
        db.add(left)
        await db.commit()
        replay_id = left.id
    await app.state.replays.resume()
    await app.state.replays.wait(replay_id)
    ready = (await client.get(f"/api/v1/replays/{replay_id}")).json()
    assert ready["state"] == "ready" and ready["duration_s"] > 0.5
