"""A listener outside the service's territories (US and Canada here) gets 451 on every URL
that delivers the program, a page in a browser and JSON elsewhere; one test per URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from onair.app import create_asgi
from onair.clock import FakeClock
from onair.settings import Settings
from tests.conftest import sign_up
from tests.licensing.conftest import new_show

STREAM_URLS = [
    ("GET", "/listen/{id}.mp3"),
    ("GET", "/listen/{id}.aac"),
    ("GET", "/listen/{id}.m3u8"),
    ("GET", "/listen/{id}/hls/1.ts"),
    ("GET", "/listen/{id}.m3u"),
    ("GET", "/listen/{id}.pls"),
    ("POST", "/api/v1/shows/{id}/whep"),
    ("POST", "/api/v1/shows/{id}/studio/webrtc"),
    ("GET", "/replays/{id}.mp3"),
]


@pytest.fixture
async def front(
    app: FastAPI, settings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """What `onair serve` runs: MP3 and AAC are answered ahead of the app (StreamFront)."""
    asgi = create_asgi(settings, clock)
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    onair = asgi.onair  # type: ignore[attr-defined]
    await onair.stations.aclose()
    await onair.engine.dispose()


@pytest.fixture
async def live_show(front: httpx.AsyncClient) -> int:
    await sign_up(front, "host")
    show = await new_show(front)
    r = await front.post(f"/api/v1/shows/{show}/live")
    assert r.status_code == 200, r.text
    return show


async def _send(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    if method == "POST":
        headers = {**headers, "content-type": "application/sdp"}
        return await client.post(url, content=b"v=0\r\n", headers=headers)
    return await client.get(url, headers=headers)


@pytest.mark.parametrize(("method", "template"), STREAM_URLS, ids=[u for _, u in STREAM_URLS])
async def test_a_listener_abroad_gets_451_on_the_stream_url(
    front: httpx.AsyncClient, live_show: int, method: str, template: str
) -> None:
    url = template.format(id=live_show)
    r = await _send(front, method, url, {"CF-IPCountry": "FR", "accept": "application/json"})
    assert r.status_code == 451, (url, r.status_code, r.text[:200])
    error = r.json()["error"]
    assert error["code"] == "unavailable_in_territory" and error["territory"] == "FR"
    assert "France" in error["message"] and "United States" in error["message"]

    page = await _send(front, method, url, {"CF-IPCountry": "FR", "accept": "text/html"})
    assert page.status_code == 451 and page.headers["content-type"].startswith("text/html")
    assert "Not available where you are" in page.text and "Canada" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_listeners_in_the_territories_get_the_program(
    front: httpx.AsyncClient, live_show: int
) -> None:
    for country in ("US", "CA"):
        r = await front.get(f"/listen/{live_show}.m3u", headers={"CF-IPCountry": country})
        assert r.status_code == 200 and f"/listen/{live_show}.mp3" in r.text
        head = await front.head(f"/listen/{live_show}.mp3", headers={"CF-IPCountry": country})
        assert head.status_code == 200 and head.headers["content-type"] == "audio/mpeg"
    # No header and no account: the default territory (the first, US).
    assert (await front.get(f"/listen/{live_show}.pls")).status_code == 200
    # A CDN placeholder (unknown, Tor) falls back the same way.
    r = await front.get(f"/listen/{live_show}.pls", headers={"CF-IPCountry": "XX"})
    assert r.status_code == 200


async def test_the_account_territory_counts_when_no_header_says_otherwise(
    front: httpx.AsyncClient, live_show: int
) -> None:
    await front.post("/api/v1/accounts/logout")
    await sign_up(front, "traveller")
    r = await front.put("/api/v1/territory", json={"territory": "de"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "territory": "DE",
        "name": "Germany",
        "source": "account",
        "account_territory": "DE",
        "allowed": False,
        "territories": ["US", "CA"],
        "territory_names": ["United States of America", "Canada"],
    }
    assert (await front.get(f"/listen/{live_show}.m3u")).status_code == 451
    # A header that places no one (Tor, unknown) leaves the account to say.
    r = await front.get(f"/listen/{live_show}.m3u", headers={"CF-IPCountry": "T1"})
    assert r.status_code == 451
    # The operator's CDN header is trusted over the account.
    r = await front.get(f"/listen/{live_show}.m3u", headers={"CF-IPCountry": "CA"})
    assert r.status_code == 200
    bad = await front.put("/api/v1/territory", json={"territory": "UK"})
    assert bad.status_code == 422 and "not an ISO 3166-1" in bad.json()["error"]["message"]
    cleared = await front.put("/api/v1/territory", json={"territory": None})
    assert cleared.json()["source"] == "default" and cleared.json()["allowed"]
    assert (await front.get(f"/listen/{live_show}.m3u")).status_code == 200


async def test_no_header_is_trusted_unless_the_operator_names_one(
    tmp_path: object, clock: FakeClock
) -> None:
    from pathlib import Path

    from onair.db.migrate import upgrade_async

    assert isinstance(tmp_path, Path)
    settings = Settings(data_dir=tmp_path / "plain", territories="US")
    settings.data_dir.mkdir(parents=True)
    await upgrade_async(settings.resolved_database_url)
    asgi = create_asgi(settings, clock)
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/listen/1.m3u", headers={"CF-IPCountry": "FR"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_live"
        where = (await c.get("/api/v1/territory", headers={"CF-IPCountry": "FR"})).json()
        assert (where["territory"], where["source"]) == ("US", "default")
    await asgi.onair.engine.dispose()  # type: ignore[attr-defined]


async def test_a_player_fetching_segments_is_not_looked_up_each_time(
    front: httpx.AsyncClient, live_show: int
) -> None:
    """The guard reads a session's account territory once and keeps it; setting a territory
    is still heeded at the next request."""
    from sqlalchemy import event

    onair = front._transport.app.onair  # type: ignore[attr-defined]
    lookups: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "sessions" in statement:
            lookups.append(statement)

    await front.post("/api/v1/accounts/logout")
    await sign_up(front, "listener")
    event.listen(onair.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(5):
            assert (await front.get(f"/listen/{live_show}.m3u")).status_code == 200
        assert len(lookups) == 1
        assert (await front.put("/api/v1/territory", json={"territory": "fr"})).status_code == 200
        assert (await front.get(f"/listen/{live_show}.m3u")).status_code == 451
        assert (await front.get(f"/listen/{live_show}.m3u")).status_code == 451
    finally:
        event.remove(onair.engine.sync_engine, "before_cursor_execute", seen)
