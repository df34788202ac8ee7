from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from tests.conftest import sign_up


@pytest.fixture
async def tracks(app: FastAPI, clock: FakeClock) -> list[int]:
    """Three playable tracks and one metadata-only track."""
    async with app.state.onair.sessions() as db:
        written = await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"test:{i}",
                    title=title,
                    artists=("Test Band",),
                    genres=("Jazz",),
                    duration_s=120.0,
                    audio_path=None if i == 3 else f"/nonexistent/{i}.mp3",
                )
                for i, title in enumerate(["One", "Two", "Three", "Paper Only"])
            ]
        )
        await db.commit()
        return [t.id for t in written]


def _in(clock: FakeClock, hours: float) -> str:
    return (clock.now() + timedelta(hours=hours)).isoformat()


async def test_a_host_creates_edits_goes_live_and_ends_a_show(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    r = await client.post(
        "/api/v1/shows",
        json={
            "title": "Sunday Jazz",
            "description": "Slow tunes",
            "genre": "Jazz",
            "hashtags": ["#Brunch", "jazz", "jazz"],
            "scheduled_start": _in(clock, 2),
        },
    )
    assert r.status_code == 201, r.text
    show = r.json()
    assert show["status"] == "scheduled"
    assert show["hashtags"] == ["brunch", "jazz"]
    assert show["genre"] == "Jazz" and show["host"]["username"] == "host"
    sid = show["id"]

    r = await client.patch(f"/api/v1/shows/{sid}", json={"title": "Sunday Jazz Brunch"})
    assert r.json()["title"] == "Sunday Jazz Brunch"
    assert r.json()["description"] == "Slow tunes"

    live = await client.post(f"/api/v1/shows/{sid}/live")
    assert live.json()["status"] == "live" and live.json()["started_at"]
    ended = await client.post(f"/api/v1/shows/{sid}/end")
    assert ended.json()["status"] == "ended"
    again = await client.post(f"/api/v1/shows/{sid}/live")
    assert again.status_code == 409 and again.json()["error"]["code"] == "show_ended"


async def test_lists_live_upcoming_recent_by_genre_and_by_host(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "alice")
    later = (
        await client.post(
            "/api/v1/shows",
            json={"title": "Later", "genre": "Rock", "scheduled_start": _in(clock, 5)},
        )
    ).json()
    soon = (
        await client.post(
            "/api/v1/shows",
            json={"title": "Soon", "genre": "Jazz", "scheduled_start": _in(clock, 1)},
        )
    ).json()
    live = (await client.post("/api/v1/shows", json={"title": "Now", "genre": "Jazz"})).json()
    await client.post(f"/api/v1/shows/{live['id']}/live")
    client.cookies.clear()
    await sign_up(client, "bob")
    old = (await client.post("/api/v1/shows", json={"title": "Yesterday"})).json()
    await client.post(f"/api/v1/shows/{old['id']}/live")
    await client.post(f"/api/v1/shows/{old['id']}/end")

    async def titles(**params: str) -> list[str]:
        r = await client.get("/api/v1/shows", params=params)
        assert r.status_code == 200
        return [s["title"] for s in r.json()]

    assert await titles(status="live") == ["Now"]
    assert await titles(status="upcoming") == ["Soon", "Later"]
    assert await titles(status="recent") == ["Yesterday"]
    assert set(await titles(genre="jazz")) == {"Soon", "Now"}
    assert set(await titles(host="alice")) == {"Later", "Soon", "Now"}
    assert (await client.get("/api/v1/shows", params={"status": "bogus"})).status_code == 422
    assert later["status"] == soon["status"] == "scheduled"


async def test_one_live_show_per_host(client: httpx.AsyncClient) -> None:
    await sign_up(client, "busy")
    a = (await client.post("/api/v1/shows", json={"title": "A"})).json()
    b = (await client.post("/api/v1/shows", json={"title": "B"})).json()
    assert (await client.post(f"/api/v1/shows/{a['id']}/live")).status_code == 200
    r = await client.post(f"/api/v1/shows/{b['id']}/live")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_live"


async def test_only_the_host_changes_a_show(client: httpx.AsyncClient) -> None:
    await sign_up(client, "owner")
    sid = (await client.post("/api/v1/shows", json={"title": "Mine"})).json()["id"]
    client.cookies.clear()
    assert (await client.post(f"/api/v1/shows/{sid}/live")).status_code == 401
    assert (await client.post("/api/v1/shows", json={"title": "anon"})).status_code == 401
    await sign_up(client, "intruder")
    for method, path, body in [
        ("PATCH", f"/api/v1/shows/{sid}", {"title": "Hijacked"}),
        ("POST", f"/api/v1/shows/{sid}/live", None),
        ("POST", f"/api/v1/shows/{sid}/end", None),
        ("POST", f"/api/v1/shows/{sid}/queue", {"track_id": 1}),
        ("PUT", f"/api/v1/shows/{sid}/queue", {"item_ids": []}),
    ]:
        r = await client.request(method, path, json=body)
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "forbidden"


async def test_bad_show_input_is_refused_cleanly(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "careful")
    cases = [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 121},
        {"title": "T", "hashtags": ["no spaces allowed"]},
        {"title": "T", "hashtags": [f"t{i}" for i in range(11)]},
        {"title": "T", "scheduled_start": "2026-13-45"},
        {"title": "T", "scheduled_start": "2026-06-01T10:00:00"},
        {"title": "T", "scheduled_start": _in(clock, -1)},
        {"title": ["not", "a", "string"]},
    ]
    for body in cases:
        r = await client.post("/api/v1/shows", json=body)
        assert r.status_code == 422, body
        assert set(r.json()["error"]) >= {"code", "message"}
    assert (await client.get("/api/v1/shows/999999")).status_code == 404
    assert (await client.get("/api/v1/shows/not-a-number")).status_code == 422


async def test_queue_add_remove_reorder_and_what_listeners_see(
    client: httpx.AsyncClient, tracks: list[int]
) -> None:
    await sign_up(client, "deejay")
    sid = (await client.post("/api/v1/shows", json={"title": "Queue test"})).json()["id"]
    for tid in tracks[:3]:
        r = await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": tid})
        assert r.status_code == 201, r.text
    queue = r.json()["upcoming"]
    assert [q["track"]["title"] for q in queue] == ["One", "Two", "Three"]

    ids = [q["id"] for q in queue]
    r = await client.put(f"/api/v1/shows/{sid}/queue", json={"item_ids": [ids[2], ids[0], ids[1]]})
    assert [q["track"]["title"] for q in r.json()["upcoming"]] == ["Three", "One", "Two"]

    r = await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": tracks[0], "position": 0})
    assert [q["track"]["title"] for q in r.json()["upcoming"]] == ["One", "Three", "One", "Two"]

    r = await client.delete(f"/api/v1/shows/{sid}/queue/{ids[2]}")
    assert [q["track"]["title"] for q in r.json()["upcoming"]] == ["One", "One", "Two"]

    bad = await client.put(f"/api/v1/shows/{sid}/queue", json={"item_ids": [ids[0]]})
    assert bad.status_code == 422
    paper = await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": tracks[3]})
    assert paper.status_code == 409 and paper.json()["error"]["code"] == "not_playable"
    missing = await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": 424242})
    assert missing.status_code == 404

    client.cookies.clear()
    listener_view = (await client.get(f"/api/v1/shows/{sid}/queue")).json()
    assert listener_view == {"now_playing": None, "upcoming": []}
    show = (await client.get(f"/api/v1/shows/{sid}")).json()
    assert show["now_playing"] is None


async def test_cover_upload_accepts_images_and_refuses_the_rest(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    import io

    from PIL import Image

    await sign_up(client, "artist")
    sid = (await client.post("/api/v1/shows", json={"title": "Covered"})).json()["id"]
    png = io.BytesIO()
    Image.new("RGB", (2000, 1000), (200, 30, 90)).save(png, "PNG")
    r = await client.put(
        f"/api/v1/shows/{sid}/cover", files={"file": ("c.png", png.getvalue(), "image/png")}
    )
    assert r.status_code == 200, r.text
    cover = await client.get(r.json()["cover_url"])
    assert cover.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(cover.content)) as img:
        assert max(img.size) <= 1200
    r = await client.put(
        f"/api/v1/shows/{sid}/cover", files={"file": ("c.png", b"<html>nope</html>", "image/png")}
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "not_an_image"
    big = b"\0" * (app.state.onair.settings.max_upload_bytes + 200_000)
    r = await client.put(f"/api/v1/shows/{sid}/cover", files={"file": ("c.png", big, "image/png")})
    assert r.status_code == 413


async def test_hashtags_keep_their_order_and_a_schedule_can_be_cleared(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "orderly")
    r = await client.post(
        "/api/v1/shows",
        json={"title": "Tags", "hashtags": ["late", "harbour"], "scheduled_start": _in(clock, 1)},
    )
    sid = r.json()["id"]
    assert r.json()["hashtags"] == ["late", "harbour"]
    r = await client.patch(f"/api/v1/shows/{sid}", json={"title": "Tags!"})
    assert r.json()["scheduled_start"] is not None
    r = await client.patch(f"/api/v1/shows/{sid}", json={"scheduled_start": None})
    assert r.json()["scheduled_start"] is None


async def test_long_overdue_shows_are_no_longer_coming_up(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_up(client, "no_show")
    await client.post("/api/v1/shows", json={"title": "Ghost", "scheduled_start": _in(clock, 1)})
    await client.post("/api/v1/shows", json={"title": "Undated"})

    async def upcoming() -> list[str]:
        r = await client.get("/api/v1/shows", params={"status": "upcoming"})
        return [s["title"] for s in r.json()]

    assert await upcoming() == ["Ghost", "Undated"]
    clock.advance(2 * 3600)
    assert await upcoming() == ["Ghost", "Undated"]
    clock.advance(2 * 3600)
    assert await upcoming() == ["Undated"]


async def test_an_ended_show_keeps_its_queue_frozen(
    client: httpx.AsyncClient, tracks: list[int]
) -> None:
    await sign_up(client, "closer")
    sid = (await client.post("/api/v1/shows", json={"title": "Closing"})).json()["id"]
    r = await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": tracks[0]})
    item = r.json()["upcoming"][0]["id"]
    await client.post(f"/api/v1/shows/{sid}/live")
    await client.post(f"/api/v1/shows/{sid}/end")
    assert (await client.get(f"/api/v1/shows/{sid}/queue")).json()["upcoming"] == []
    for r in (
        await client.delete(f"/api/v1/shows/{sid}/queue/{item}"),
        await client.put(f"/api/v1/shows/{sid}/queue", json={"item_ids": []}),
        await client.post(f"/api/v1/shows/{sid}/queue", json={"track_id": tracks[1]}),
    ):
        assert r.status_code == 409 and r.json()["error"]["code"] == "show_ended"


async def test_a_studio_that_cannot_start_leaves_the_show_scheduled(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_up(client, "unlucky")
    sid = (await client.post("/api/v1/shows", json={"title": "Broken studio"})).json()["id"]

    async def fail(show_id: int) -> None:
        raise RuntimeError("no audio device")

    monkeypatch.setattr(app.state.onair.stations, "start", fail)
    r = await client.post(f"/api/v1/shows/{sid}/live")
    assert r.status_code == 503 and r.json()["error"]["code"] == "studio_failed"
    assert (await client.get(f"/api/v1/shows/{sid}")).json()["status"] == "scheduled"
