"""Song requests over the API: who may ask and see what, grouping and counts, queueing and
dismissing a song's requests, the rate limit, and what the room hears."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.requests.models import MAX_DEDICATION, RequestState, SongRequest
from onair.rooms.hub import RoomClient, RoomEvent
from onair.shows.models import QueueItem
from tests.conftest import sign_up


@pytest.fixture
async def tracks(app: FastAPI, clock: FakeClock) -> dict[str, int]:
    """Three playable songs and one known only by its metadata, by title."""
    async with app.state.onair.sessions() as db:
        written = await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"test:{i}",
                    title=title,
                    artists=("Test Band",),
                    duration_s=120.0,
                    audio_path=None if title == "Paper Only" else f"/nonexistent/{i}.mp3",
                )
                for i, title in enumerate(["One", "Two", "Three", "Paper Only"])
            ]
        )
        await db.commit()
        return {t.title: t.id for t in written}


@asynccontextmanager
async def person(app: FastAPI, name: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own: signed up as `name`, or anonymous for None."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        if name is not None:
            await sign_up(c, name)
        yield c


async def user_id(c: httpx.AsyncClient) -> int:
    return int((await c.get("/api/v1/accounts/me")).json()["id"])


async def new_show(host: httpx.AsyncClient, title: str = "Requests hour") -> str:
    show = (await host.post("/api/v1/shows", json={"title": title})).json()
    return f"/api/v1/shows/{show['id']}"


def events(client: RoomClient) -> list[RoomEvent]:
    out = []
    while not client.queue.empty():
        out.append(client.queue.get_nowait())
    return out


async def test_who_may_request_and_who_may_see_them(app: FastAPI, tracks: dict[str, int]) -> None:
    async with AsyncExitStack() as stack:
        host = await stack.enter_async_context(person(app, "host"))
        ann = await stack.enter_async_context(person(app, "ann"))
        nobody = await stack.enter_async_context(person(app, None))
        base = await new_show(host)
        one = tracks["One"]

        # Anonymous: sign in first, everywhere.
        for r in (
            await nobody.post(f"{base}/requests", json={"track_id": one}),
            await nobody.get(f"{base}/requests/mine"),
            await nobody.delete(f"{base}/requests/1"),
            await nobody.get(f"{base}/requests"),
            await nobody.post(f"{base}/requests/tracks/{one}/queue"),
            await nobody.post(f"{base}/requests/tracks/{one}/dismiss"),
        ):
            assert r.status_code == 401, r.text

        r = await ann.post(f"{base}/requests", json={"track_id": one, "dedication": "For Sam"})
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "open" and r.json()["dedication"] == "For Sam"

        # A listener sees their own requests, never the board, and cannot answer them.
        for r in (
            await ann.get(f"{base}/requests"),
            await ann.post(f"{base}/requests/tracks/{one}/queue"),
            await ann.post(f"{base}/requests/tracks/{one}/dismiss"),
        ):
            assert r.status_code == 403, r.text
        assert [m["track"]["title"] for m in (await ann.get(f"{base}/requests/mine")).json()] == [
            "One"
        ]
        # The crew queues songs itself.
        r = await host.post(f"{base}/requests", json={"track_id": one})
        assert r.status_code == 409 and r.json()["error"]["code"] == "is_crew"
        assert (await host.get(f"{base}/requests/mine")).json() == []
        # A co-host who accepted is crew.
        bob = await stack.enter_async_context(person(app, "bob"))
        await host.post(f"{base}/cohosts", json={"username": "bob"})
        assert (await bob.get(f"{base}/requests")).status_code == 403  # invited, not yet crew
        await bob.post(f"{base}/cohosts/accept")
        assert (await bob.get(f"{base}/requests")).json()["open"] == 1


async def test_requests_are_checked_like_the_queue(app: FastAPI, tracks: dict[str, int]) -> None:
    async with person(app, "host") as host, person(app, "ann") as ann:
        base = await new_show(host)
        for body, status, code in (
            ({"track_id": tracks["Paper Only"]}, 409, "not_playable"),
            ({"track_id": 424242}, 404, "not_found"),
            ({"track_id": 0}, 422, "invalid"),
            ({}, 422, "invalid"),
            ({"track_id": tracks["One"], "dedication": "x" * (MAX_DEDICATION + 1)}, 422, "invalid"),
            ({"track_id": tracks["One"], "dedication": 5}, 422, "invalid"),
        ):
            r = await ann.post(f"{base}/requests", json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
        # The host's own queue refuses the same songs with the same answers.
        r = await host.post(f"{base}/queue", json={"track_id": tracks["Paper Only"]})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "not_playable")
        r = await ann.post("/api/v1/shows/4242/requests", json={"track_id": tracks["One"]})
        assert r.status_code == 404
        # The longest dedication allowed is kept whole, trimmed of outer spaces.
        r = await ann.post(
            f"{base}/requests",
            json={"track_id": tracks["One"], "dedication": f"  {'d' * MAX_DEDICATION}  "},
        )
        assert r.status_code == 201 and r.json()["dedication"] == "d" * MAX_DEDICATION

        # A show that has ended takes no requests, and its requests are frozen.
        await host.post(f"{base}/live")
        await host.post(f"{base}/end")
        request_id = r.json()["id"]
        for r in (
            await ann.post(f"{base}/requests", json={"track_id": tracks["Two"]}),
            await ann.delete(f"{base}/requests/{request_id}"),
            await host.post(f"{base}/requests/tracks/{tracks['One']}/queue"),
            await host.post(f"{base}/requests/tracks/{tracks['One']}/dismiss"),
        ):
            assert r.status_code == 409 and r.json()["error"]["code"] == "show_ended", r.text
        assert (await ann.get(f"{base}/requests/mine")).json()[0]["state"] == "open"


async def test_the_crew_sees_requests_grouped_by_song_most_wanted_first(
    app: FastAPI, tracks: dict[str, int], clock: FakeClock
) -> None:
    names = ["host", "ann", "bob", "cat", "dan"]
    async with AsyncExitStack() as stack:
        c = {n: await stack.enter_async_context(person(app, n)) for n in names}
        base = await new_show(c["host"])

        async def ask(name: str, title: str, dedication: str = "") -> httpx.Response:
            clock.advance(60)
            return await c[name].post(
                f"{base}/requests", json={"track_id": tracks[title], "dedication": dedication}
            )

        assert (await ask("cat", "Two", "for the night shift")).status_code == 201
        assert (await ask("ann", "One", "For Sam")).status_code == 201
        assert (await ask("bob", "One")).status_code == 201
        assert (await ask("dan", "Three")).status_code == 201
        # Asking again for the same song changes the dedication; it is not a second request.
        again = await ask("ann", "One", "For Sam <3")
        assert again.status_code == 200 and again.json()["dedication"] == "For Sam <3"

        board = (await c["host"].get(f"{base}/requests")).json()
        assert board["open"] == 4
        groups = board["groups"]
        # Most asked for first, then the one waiting longest.
        assert [(g["track"]["title"], g["count"]) for g in groups] == [
            ("One", 2),
            ("Two", 1),
            ("Three", 1),
        ]
        one = groups[0]
        assert [
            (r["user"]["username"], r["user"]["display_name"], r["dedication"])
            for r in one["requesters"]
        ] == [("ann", "ann", "For Sam <3"), ("bob", "bob", "")]
        # The clock starts at 12:00 and each request came a minute after the one before.
        assert (one["first_requested_at"], one["last_requested_at"]) == (
            "2026-01-01T12:02:00Z",
            "2026-01-01T12:03:00Z",
        )
        assert one["requesters"][0]["user"]["id"] == await user_id(c["ann"])
        assert one["in_queue"] is False
        # A song the host already queued by hand says so.
        await c["host"].post(f"{base}/queue", json={"track_id": tracks["Three"]})
        groups = (await c["host"].get(f"{base}/requests")).json()["groups"]
        assert [g["in_queue"] for g in groups] == [False, False, True]


async def test_queueing_a_song_answers_all_its_requests_and_queues_it_once(
    app: FastAPI, tracks: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []

    async def queue_changed(show_id: int) -> None:
        synced.append(show_id)

    monkeypatch.setattr(app.state.onair.stations, "queue_changed", queue_changed)
    async with AsyncExitStack() as stack:
        host, ann, bob, cat = [
            await stack.enter_async_context(person(app, n)) for n in ("host", "ann", "bob", "cat")
        ]
        base = await new_show(host)
        show_id = int(base.rsplit("/", 1)[1])
        one = tracks["One"]
        for who, dedication in ((ann, "For Sam"), (bob, "")):
            await who.post(f"{base}/requests", json={"track_id": one, "dedication": dedication})
        await cat.post(f"{base}/requests", json={"track_id": tracks["Two"]})

        hub = app.state.onair.rooms
        ann_id, bob_id, host_id = await user_id(ann), await user_id(bob), await user_id(host)
        ann_room = hub.join(show_id, user_id=ann_id)
        crew_room = hub.join(show_id, user_id=host_id, crew=True)
        public_room = hub.join(show_id)

        r = await host.post(f"{base}/requests/tracks/{one}/queue")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "queued" and body["handled"] == 2
        assert [i["track"]["title"] for i in body["queue"]["upcoming"]] == ["One"]
        assert [g["track"]["title"] for g in body["board"]["groups"]] == ["Two"]
        assert body["board"]["open"] == 1
        assert synced == [show_id]  # the studio reloads the queue, as after the console's add

        # Once: a second press finds nothing open and queues nothing more.
        again = await host.post(f"{base}/requests/tracks/{one}/queue")
        assert again.status_code == 404
        queue = (await host.get(f"{base}/queue")).json()["upcoming"]
        assert [i["track"]["title"] for i in queue] == ["One"]

        async with app.state.onair.sessions() as db:
            stored = list(await db.scalars(select(SongRequest).where(SongRequest.track_id == one)))
            assert {(s.state, s.handled_by) for s in stored} == {(RequestState.queued, host_id)}
            assert all(s.handled_at is not None for s in stored)
            items = list(await db.scalars(select(QueueItem).where(QueueItem.track_id == one)))
            assert len(items) == 1 and items[0].added_by == host_id

        mine = (await ann.get(f"{base}/requests/mine")).json()
        assert [(m["track"]["title"], m["state"]) for m in mine] == [("One", "queued")]

        # The crew's consoles hear the new count; the requester hears about their request
        # (bob is not in the room, so nothing waits for him); the public hears nothing.
        assert [(e.type, e.data) for e in events(crew_room)] == [("requests", {"open": 1})]
        updates = [(e.type, e.data, e.to_user) for e in events(ann_room)]
        assert updates == [
            (
                "request.update",
                {"request_id": mine[0]["id"], "track_id": one, "state": "queued"},
                ann_id,
            )
        ]
        assert events(public_room) == []
        history = hub.room(show_id).history
        assert not any(e.to_user == bob_id for e in history)


async def test_two_of_the_crew_pressing_at_once_queue_the_song_once(
    app: FastAPI, tracks: dict[str, int]
) -> None:
    async with person(app, "host") as host, person(app, "ann") as ann:
        base = await new_show(host)
        await ann.post(f"{base}/requests", json={"track_id": tracks["One"]})
        path = f"{base}/requests/tracks/{tracks['One']}/queue"
        first, second = await asyncio.gather(host.post(path), host.post(path))
        assert sorted([first.status_code, second.status_code]) == [200, 404]
        queue = (await host.get(f"{base}/queue")).json()["upcoming"]
        assert [i["track"]["title"] for i in queue] == ["One"]


async def test_dismissing_answers_the_requests_and_leaves_the_queue_alone(
    app: FastAPI, tracks: dict[str, int]
) -> None:
    async with person(app, "host") as host, person(app, "ann") as ann:
        base = await new_show(host)
        await ann.post(f"{base}/requests", json={"track_id": tracks["Two"], "dedication": "hi"})
        r = await host.post(f"{base}/requests/tracks/{tracks['Two']}/dismiss")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "dismissed" and r.json()["queue"] is None
        assert r.json()["board"] == {"open": 0, "groups": []}
        assert (await host.get(f"{base}/queue")).json()["upcoming"] == []
        mine = (await ann.get(f"{base}/requests/mine")).json()
        assert mine[0]["state"] == "dismissed" and mine[0]["handled_at"] is not None
        assert (
            await host.post(f"{base}/requests/tracks/{tracks['Two']}/dismiss")
        ).status_code == 404
        # A dismissed song may be asked for again.
        r = await ann.post(f"{base}/requests", json={"track_id": tracks["Two"]})
        assert r.status_code == 201


async def test_a_listener_withdraws_only_their_own_open_requests(
    app: FastAPI, tracks: dict[str, int]
) -> None:
    async with person(app, "host") as host, person(app, "ann") as ann, person(app, "bob") as bob:
        base = await new_show(host)
        mine = (await ann.post(f"{base}/requests", json={"track_id": tracks["One"]})).json()
        assert (await bob.delete(f"{base}/requests/{mine['id']}")).status_code == 404
        other = await new_show(host, "Another show")
        assert (await ann.delete(f"{other}/requests/{mine['id']}")).status_code == 404
        assert (await ann.delete(f"{base}/requests/{mine['id']}")).status_code == 204
        assert (await ann.get(f"{base}/requests/mine")).json() == []
        assert (await host.get(f"{base}/requests")).json()["open"] == 0
        assert (await ann.delete(f"{base}/requests/{mine['id']}")).status_code == 404

        queued = (await ann.post(f"{base}/requests", json={"track_id": tracks["Two"]})).json()
        await host.post(f"{base}/requests/tracks/{tracks['Two']}/queue")
        r = await ann.delete(f"{base}/requests/{queued['id']}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_handled"


async def test_requests_are_rate_limited_per_listener(
    app: FastAPI, tracks: dict[str, int], clock: FakeClock
) -> None:
    burst = app.state.onair.settings.requests_per_10min
    async with person(app, "host") as host, person(app, "ann") as ann, person(app, "bob") as bob:
        base = await new_show(host)
        songs = [tracks["One"], tracks["Two"], tracks["Three"]]
        for i in range(burst):
            r = await ann.post(f"{base}/requests", json={"track_id": songs[i % 3]})
            assert r.status_code in (200, 201), r.text
        r = await ann.post(f"{base}/requests", json={"track_id": tracks["One"]})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        # Someone else is not held back by ann, and ann may ask again once time has passed.
        assert (await bob.post(f"{base}/requests", json={"track_id": songs[0]})).status_code == 201
        clock.advance(600 / burst + 1)
        assert (await ann.post(f"{base}/requests", json={"track_id": songs[0]})).status_code == 200
