"""The host's side: what the queue refuses, what the console is warned of, and why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from onair.clock import FakeClock
from onair.royalties import service as play_log
from onair.settings import Settings
from tests.conftest import sign_up
from tests.licensing.conftest import Catalog, licensing_settings, new_show


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The queue's checks on SQLite, then on PostgreSQL."""
    return licensing_settings(tmp_path, database_url)


async def queue(client: httpx.AsyncClient, show: int, track: int) -> httpx.Response:
    return await client.post(f"/api/v1/shows/{show}/queue", json={"track_id": track})


def error(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()["error"]
    return r.status_code, body["code"], body["message"]


async def test_a_song_not_licensed_in_every_territory_cannot_be_queued(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    await sign_up(client, "host")
    show = await new_show(client)
    status, code, message = error(await queue(client, show, catalog["US Only"]))
    assert (status, code) == (409, "licence_territory")
    assert "'US Only' cannot be queued: not licensed in Canada (CA)" in message
    for fine in ("Anywhere", "North America"):
        assert (await queue(client, show, catalog[fine])).status_code == 201


async def test_licence_windows_follow_the_clock(
    client: httpx.AsyncClient, catalog: Catalog, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    show = await new_show(client)
    assert error(await queue(client, show, catalog["From March"]))[:2] == (
        409,
        "licence_not_started",
    )
    assert error(await queue(client, show, catalog["Gone Last Year"]))[:2] == (
        409,
        "licence_ended",
    )
    until = await queue(client, show, catalog["Until Jan 10"])
    assert until.status_code == 201
    clock.advance(timedelta(days=9, hours=11, minutes=59, seconds=59).total_seconds())
    assert clock.now().isoformat() == "2026-01-10T23:59:59+00:00"
    # The last second of its last day: still licensed, but it would play after midnight.
    checks = await client.get(
        f"/api/v1/shows/{show}/queue/checks", params={"track_id": catalog["Until Jan 10"]}
    )
    problem = checks.json()["checks"][0]["problems"][0]
    assert problem["code"] == "licence_lapses" and not problem["blocking"]
    clock.advance(1)
    assert error(await queue(client, show, catalog["Until Jan 10"]))[1] == "licence_ended"
    clock.advance(timedelta(days=50).total_seconds())  # 1 March
    assert (await queue(client, show, catalog["From March"])).status_code == 201
    # The song queued in January is still listed for the host, marked as lapsed.
    upcoming = (await client.get(f"/api/v1/shows/{show}/queue")).json()["upcoming"]
    marks = {i["track"]["title"]: [p["code"] for p in i["problems"]] for i in upcoming}
    assert marks == {"Until Jan 10": ["licence_ended"], "From March": []}


async def test_a_clean_show_refuses_explicit_songs_and_says_so_on_the_page(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    await sign_up(client, "host")
    show = await new_show(client, clean=True)
    assert (await client.get(f"/api/v1/shows/{show}")).json()["clean"] is True
    status, code, message = error(await queue(client, show, catalog["Rude Words"]))
    assert (status, code) == (409, "explicit")
    assert "explicit lyrics and this show is marked clean" in message
    r = await client.patch(f"/api/v1/shows/{show}", json={"clean": False})
    assert r.json()["clean"] is False
    assert (await queue(client, show, catalog["Rude Words"])).status_code == 201
    r = await client.patch(f"/api/v1/shows/{show}", json={"clean": True})
    upcoming = (await client.get(f"/api/v1/shows/{show}/queue")).json()["upcoming"]
    assert [p["code"] for p in upcoming[0]["problems"]] == ["explicit"]


async def test_song_requests_pass_the_same_licence_checks(
    client: httpx.AsyncClient, app: FastAPI, catalog: Catalog
) -> None:
    await sign_up(client, "host")
    show = await new_show(client, clean=True)
    await client.post(f"/api/v1/shows/{show}/live")
    await client.post("/api/v1/accounts/logout")
    await sign_up(client, "fan")
    for title, code in (("US Only", "licence_territory"), ("Rude Words", "explicit")):
        r = await client.post(f"/api/v1/shows/{show}/requests", json={"track_id": catalog[title]})
        assert error(r)[:2] == (409, code)
    ok = await client.post(f"/api/v1/shows/{show}/requests", json={"track_id": catalog["Anywhere"]})
    assert ok.status_code == 201, ok.text


async def played(app: FastAPI, show: int, catalog: Catalog, clock: FakeClock, *titles: str) -> None:
    """A play log as if these songs had just played back to back, 200 s each."""
    start = clock.now() - timedelta(seconds=200 * len(titles))
    async with app.state.onair.sessions() as db:
        for n, title in enumerate(titles):
            play = await play_log.play_started(
                db,
                show_id=show,
                track_id=catalog[title],
                queue_item_id=None,
                started_at=start + timedelta(seconds=200 * n),
                listeners=1,
                auto_dj=False,
            )
            await play_log.play_progress(
                db,
                play,
                seconds_played=200,
                listener_seconds=200,
                peak_listeners=1,
                ended_at=start + timedelta(seconds=200 * (n + 1)),
            )


async def test_warn_mode_marks_rule_breakers_before_and_after_they_are_queued(
    client: httpx.AsyncClient, app: FastAPI, catalog: Catalog, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    show = await new_show(client)
    await played(app, show, catalog, clock, "Blue 1", "Anywhere", "Blue 2")
    ids = [catalog["Blue 3"], catalog["Blue 4"], catalog["Anywhere"]]
    r = await client.get(f"/api/v1/shows/{show}/queue/checks", params={"track_id": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rules"], body["mode"], body["territories"]) == ("dmca", "warn", ["US", "CA"])
    checks = {c["track_id"]: c["problems"] for c in body["checks"]}
    assert checks[catalog["Blue 3"]] == []  # the third from the album: at the limit
    assert checks[catalog["Anywhere"]] == []
    # Queue the third; now the fourth would break the album rule, and it is only a warning.
    assert (await queue(client, show, catalog["Blue 3"])).status_code == 201
    r = await client.get(f"/api/v1/shows/{show}/queue/checks", params={"track_id": ids[1]})
    problems = r.json()["checks"][0]["problems"]
    assert [p["code"] for p in problems] == ["rule_album_total", "rule_album_in_a_row"]
    assert not any(p["blocking"] for p in problems)
    assert "4th song from the album 'Blue Album' in 3 hours" in problems[0]["message"]
    assert "3rd song from the album 'Blue Album' in a row" in problems[1]["message"]
    added = await queue(client, show, catalog["Blue 4"])
    assert added.status_code == 201
    upcoming = added.json()["upcoming"]
    assert [[p["code"] for p in i["problems"]] for i in upcoming] == [
        [],
        ["rule_album_total", "rule_album_in_a_row"],
    ]
    assert upcoming[1]["plays_at"] > upcoming[0]["plays_at"]


@pytest.fixture
def block_mode(settings: Settings) -> Settings:
    settings.programming_rules_mode = "block"
    return settings


async def test_block_mode_refuses_a_song_that_would_break_a_rule_when_it_plays(
    block_mode: object, client: httpx.AsyncClient, app: FastAPI, catalog: Catalog, clock: FakeClock
) -> None:
    await sign_up(client, "host")
    show = await new_show(client)
    await played(app, show, catalog, clock, "Solo 1", "Solo 2", "Solo 3")
    status, code, message = error(await queue(client, show, catalog["Solo 4"]))
    assert (status, code) == (409, "rule_artist_in_a_row")
    assert "4th song by Solo Star in a row (dmca rules allow 3 in a row)" in message
    assert (await queue(client, show, catalog["Anywhere"])).status_code == 201
    assert (await queue(client, show, catalog["Solo 4"])).status_code == 201  # the run broken
    # Putting a Solo Star song first would make a run of four again: refused, saying so.
    r = await client.post(
        f"/api/v1/shows/{show}/queue", json={"track_id": catalog["Solo 5"], "position": 0}
    )
    assert error(r)[:2] == (409, "rule_artist_in_a_row")
    # Nor may the queue be reordered into a run of four.
    queued = (await client.get(f"/api/v1/shows/{show}/queue")).json()["upcoming"]
    order = [queued[1]["id"], queued[0]["id"]]  # Solo 4 first, then Anywhere
    r = await client.put(f"/api/v1/shows/{show}/queue", json={"item_ids": order})
    status, code, message = error(r)
    assert (status, code) == (409, "rule_artist_in_a_row")
    assert "'Solo 4' would be the 4th song by Solo Star in a row" in message
    again = (await client.get(f"/api/v1/shows/{show}/queue")).json()["upcoming"]
    assert [i["track"]["title"] for i in again] == ["Anywhere", "Solo 4"]  # unchanged
    # Three hours later the old plays have left the window: the same song is fine.
    clock.advance(3 * 3600 + 1)
    r = await client.post(
        f"/api/v1/shows/{show}/queue", json={"track_id": catalog["Solo 5"], "position": 0}
    )
    assert r.status_code == 201, r.text


async def test_only_the_crew_may_ask_for_checks(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    await sign_up(client, "host")
    show = await new_show(client)
    await client.post("/api/v1/accounts/logout")
    path = f"/api/v1/shows/{show}/queue/checks?track_id={catalog['Anywhere']}"
    assert (await client.get(path)).status_code == 401
    await sign_up(client, "stranger")
    assert (await client.get(path)).status_code == 403
    assert (await client.get(f"/api/v1/shows/{show}/queue/checks?track_id=0")).status_code == 422
