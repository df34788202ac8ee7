"""The host's restream destinations over the API: validation, the secret key, who sees what."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from onair.settings import Settings
from tests.conftest import sign_up

BASE = "/api/v1/restream/destinations"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No ffmpeg: these tests never push (the pushes are tested against nginx in tests/media)."""
    return Settings(
        data_dir=tmp_path / "var",
        signup_per_hour=1000,
        login_per_minute=1000,
        restream_ffmpeg="/nonexistent/ffmpeg",
    )


KEY = "live_123456789_abcdefWXYZ"


async def _add(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    payload = {"name": "Twitch", "url": "rtmp://live.twitch.tv/app", "stream_key": KEY, **body}
    return await client.post(BASE, json=payload)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://live.twitch.tv/app", "rtmp:// or rtmps://"),
        ("srt://example.org:9000", "rtmp:// or rtmps://"),
        ("rtmp:///app", "must name a server"),
        ("rtmp://host/app with space", "spaces"),
    ],
)
async def test_only_rtmp_urls_are_taken(client: httpx.AsyncClient, url: str, says: str) -> None:
    await sign_up(client, "deejay")
    r = await _add(client, url=url)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid" and says in error["message"], error


async def test_the_key_is_the_owners_alone_and_masked_in_lists(client: httpx.AsyncClient) -> None:
    await sign_up(client, "deejay")
    r = await _add(client, url="rtmps://a.rtmps.youtube.com/live2")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["stream_key"] == KEY and created["enabled"] is True
    listed = (await client.get(BASE)).json()
    assert [d["stream_key"] for d in listed] == ["••••WXYZ"]
    one = (await client.get(f"{BASE}/{created['id']}")).json()
    assert one["stream_key"] == KEY
    # The show's restream view lists it masked too.
    show = (await client.post("/api/v1/shows", json={"title": "Mine"})).json()
    view = (await client.get(f"/api/v1/shows/{show['id']}/restream")).json()
    assert view["live"] is False
    assert view["destinations"][0]["destination"]["stream_key"] == "••••WXYZ"
    assert view["destinations"][0]["push"] is None
    assert KEY not in str(view)
    # Not live: nothing to push.
    r = await client.post(f"/api/v1/shows/{show['id']}/restream/{created['id']}/start")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_live"

    await client.post("/api/v1/accounts/logout")
    await sign_up(client, "snoop")
    assert (await client.get(BASE)).json() == []
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(method, f"{BASE}/{created['id']}", json={"enabled": False})
        assert r.status_code == 404, (method, r.text)
        assert KEY not in r.text
    r = await client.get(f"/api/v1/shows/{show['id']}/restream")
    assert r.status_code == 403


async def test_edit_disable_and_remove(client: httpx.AsyncClient) -> None:
    await sign_up(client, "deejay")
    created = (await _add(client)).json()
    r = await client.patch(
        f"{BASE}/{created['id']}", json={"enabled": False, "name": "  My  Twitch "}
    )
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["name"] == "My Twitch"
    r = await client.patch(f"{BASE}/{created['id']}", json={"url": "https://example.org"})
    assert r.status_code == 422
    assert (await client.delete(f"{BASE}/{created['id']}")).status_code == 204
    assert (await client.get(BASE)).json() == []


async def test_a_host_keeps_a_few_destinations(client: httpx.AsyncClient) -> None:
    await sign_up(client, "deejay")
    for n in range(5):
        assert (await _add(client, name=f"d{n}")).status_code == 201
    r = await _add(client, name="one too many")
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_destinations"


async def test_the_console_has_the_panel_for_the_host_alone(client: httpx.AsyncClient) -> None:
    await sign_up(client, "helper")
    await client.post("/api/v1/accounts/logout")
    await sign_up(client, "deejay")
    show = (await client.post("/api/v1/shows", json={"title": "Mine"})).json()
    r = await client.post(f"/api/v1/shows/{show['id']}/cohosts", json={"username": "helper"})
    assert r.status_code == 201, r.text
    page = await client.get(f"/shows/{show['id']}/console", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "data-restream" in page.text and "/static/restream.js" in page.text
    await client.post("/api/v1/accounts/logout")
    login = {"login": "helper", "password": "correct horse"}
    assert (await client.post("/api/v1/accounts/login", json=login)).status_code == 200
    assert (await client.post(f"/api/v1/shows/{show['id']}/cohosts/accept")).status_code == 200
    page = await client.get(f"/shows/{show['id']}/console", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    assert "data-restream" not in page.text and "restream.js" not in page.text


async def test_without_ffmpeg_a_start_says_so(client: httpx.AsyncClient) -> None:
    await sign_up(client, "deejay")
    created = (await _add(client, enabled=True)).json()
    show = (await client.post("/api/v1/shows", json={"title": "Mine"})).json()
    # Going live is not held up by a destination that cannot start.
    assert (await client.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
    view = (await client.get(f"/api/v1/shows/{show['id']}/restream")).json()
    assert view["live"] is True and view["destinations"][0]["push"] is None
    r = await client.post(f"/api/v1/shows/{show['id']}/restream/{created['id']}/start")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "restream_unavailable"
    assert "ffmpeg" in r.json()["error"]["message"]
    await client.post(f"/api/v1/shows/{show['id']}/end")
