"""The search API and pages over HTTP: grouped JSON, refusals as 422 JSON (never a 500),
escaped user text, song and artist pages; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from onair.app import create_app
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings
from tests.conftest import sign_up
from tests.test_security import assert_no_inline_script


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Empty for SQLite in the data dir."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def api(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    url = database_url
    settings = Settings(data_dir=tmp_path / "var", database_url=url, signup_per_hour=1000)
    settings.data_dir.mkdir(parents=True)
    await upgrade_async(settings.resolved_database_url)
    app = create_app(settings, clock)
    await _catalog(app, clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.onair.stations.aclose()
    await app.state.onair.engine.dispose()


async def _catalog(app: FastAPI, clock: FakeClock) -> None:
    async with app.state.onair.sessions() as db:
        await CatalogWriter(db, clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"test:{title}",
                    title=title,
                    artists=(artist,),
                    genres=("Pop",),
                    audio_path=f"/nonexistent/{title}.mp3",
                )
                for title, artist in [
                    ("Secret Garden", "Hidden <b>Band</b>"),
                    ("Harbour Lights", "Blue Pilots"),
                ]
            ]
        )
        await db.commit()


async def test_results_are_grouped(api: httpx.AsyncClient) -> None:
    await sign_up(api, "ana")
    r = await api.post("/api/v1/shows", json={"title": "Harbour Radio", "hashtags": ["harbour"]})
    assert r.status_code == 201, r.text
    r = await api.get("/api/v1/search", params={"q": "harbour"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "query",
        "shows",
        "hosts",
        "hashtags",
        "artists",
        "tracks",
        "playing_now",
        "recently_played",
    }
    assert [s["title"] for s in body["shows"]] == ["Harbour Radio"]
    assert body["hashtags"] == [{"tag": "harbour", "shows": 1}]
    assert [t["title"] for t in body["tracks"]] == ["Harbour Lights"]
    assert body["playing_now"] == body["recently_played"] == []
    r = await api.get("/api/v1/search", params={"q": "ana"})
    assert [h["username"] for h in r.json()["hosts"]] == ["ana"]


async def test_a_queued_song_is_not_told(api: httpx.AsyncClient) -> None:
    await sign_up(api, "ana")
    show = (await api.post("/api/v1/shows", json={"title": "Queue Keeper"})).json()
    track = (await api.get("/api/v1/catalog/search", params={"q": "secret"})).json()["tracks"][0]
    r = await api.post(f"/api/v1/shows/{show['id']}/queue", json={"track_id": track["id"]})
    assert r.status_code == 201, r.text
    body = (await api.get("/api/v1/search", params={"q": "secret garden"})).json()
    assert body["shows"] == body["playing_now"] == body["recently_played"] == []
    plays = (await api.get(f"/api/v1/catalog/tracks/{track['id']}/plays")).json()
    assert plays["playing_now"] == plays["recently_played"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "query.q"), ({"q": "x" * 201}, "query.q")],
)
async def test_bad_queries_are_refused_as_json(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    r = await api.get("/api/v1/search", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"
    assert field in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "q", ["", "\x00", "a\x00b", "%", "_%_", "'; DROP TABLE shows; --", "ü" * 200]
)
async def test_odd_queries_are_answered(api: httpx.AsyncClient, q: str) -> None:
    r = await api.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    page = await api.get("/search", params={"q": q}, headers={"accept": "text/html"})
    assert page.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1/catalog/artists/999999", "/api/v1/catalog/tracks/999999/plays"],
)
async def test_unknown_artists_and_songs_are_404(api: httpx.AsyncClient, path: str) -> None:
    r = await api.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    page = await api.get(path.replace("/api/v1/catalog", "").replace("/plays", ""))
    assert page.status_code == 404


async def test_pages_escape_what_users_wrote(api: httpx.AsyncClient) -> None:
    await sign_up(api, "mallory")
    title = "<script>alert('x')</script> Hidden"
    assert (await api.post("/api/v1/shows", json={"title": title})).status_code == 201
    page = await api.get("/search", params={"q": "hidden"}, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Hidden" in page.text
    assert "Hidden &lt;b&gt;Band&lt;/b&gt;" in page.text  # the artist group
    artist = (await api.get("/api/v1/search", params={"q": "hidden band"})).json()["artists"][0]
    detail = (await api.get(f"/api/v1/catalog/artists/{artist['id']}")).json()
    assert [t["title"] for t in detail["tracks"]] == ["Secret Garden"]
    artist_page = await api.get(f"/artists/{artist['id']}")
    assert artist_page.status_code == 200
    assert (
        "<b>Band</b>" not in artist_page.text
        and "Hidden &lt;b&gt;Band&lt;/b&gt;" in artist_page.text
    )
    track_page = await api.get(f"/tracks/{detail['tracks'][0]['id']}")
    assert track_page.status_code == 200
    for rendered in (page, artist_page, track_page):  # the pages' security headers hold
        assert_no_inline_script(rendered)
        assert "frame-ancestors 'none'" in rendered.headers["content-security-policy"]
    assert "Secret Garden" in track_page.text and "No live show is playing" in track_page.text
