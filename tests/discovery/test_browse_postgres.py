"""The browse queries on a real PostgreSQL server: genre ranking and labels, live shows by
listeners, hashtags and trending (the same scenario as the SQLite tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from onair.app import create_app
from onair.catalog.models import Track
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings
from onair.shows.browse.service import save_listeners
from tests.discovery.browse_world import JAZZ_RANKING, genre_scenario, live_show, play

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_app(postgres_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    await upgrade_async(postgres_url)
    app = create_app(Settings(data_dir=tmp_path, database_url=postgres_url), FakeClock())
    async with app.state.onair.sessions() as db:
        await CatalogWriter(db, app.state.onair.clock).write(
            [
                TrackInput(
                    source="test",
                    source_key=f"pg:{genre}:{i}",
                    title=f"{genre} song {i}",
                    artists=(f"{genre} Band",),
                    genres=(genre,),
                )
                for genre in ("Jazz", "Electronic", "Rock")
                for i in range(10)
            ]
        )
        await db.commit()
    yield app
    await app.state.onair.stations.aclose()
    await app.state.onair.engine.dispose()


async def test_browse_queries_on_postgres(pg_app: FastAPI) -> None:
    onair = pg_app.state.onair
    clock = onair.clock
    async with onair.sessions() as db:
        made = await genre_scenario(db, clock)
        await save_listeners(db, made["fake"].id, 40)
        await save_listeners(db, made["medley"].id, 7)
        tagged = await live_show(db, clock, "tag_host", "Tagged", "Rock", ["night", "rock"])
        await save_listeners(db, tagged.id, 9)
        rock_song = await db.scalar(select(Track.id).where(Track.title == "Rock song 0"))
        assert rock_song is not None
        await play(db, tagged.id, rock_song, 120.0, clock.now(), listeners=9)

    transport = httpx.ASGITransport(app=pg_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pg") as client:
        jazz = (
            await client.get("/api/v1/shows", params={"genre": "jazz", "status": "live"})
        ).json()
        assert [s["title"] for s in jazz] == JAZZ_RANKING
        labels = {s["title"]: s["genre_match"]["label"] for s in jazz}
        assert labels["Fake Jazz"] == "Mostly plays Electronic"
        assert labels["Medley"] == "Off-genre"
        assert labels["Real Jazz"] == "90 % Jazz"

        page = await client.get(
            "/api/v1/shows", params={"status": "live", "sort": "listeners", "limit": 3}
        )
        assert [(s["title"], s["listeners"]) for s in page.json()] == [
            ("Fake Jazz", 40),
            ("Tagged", 9),
            ("Medley", 7),
        ]
        rest = await client.get(
            "/api/v1/shows", params={"status": "live", "sort": "listeners", "offset": 3}
        )
        assert [s["listeners"] for s in rest.json()] == [0, 0, 0, 0]

        tagged_list = await client.get("/api/v1/shows", params={"hashtag": "night"})
        assert [s["title"] for s in tagged_list.json()] == ["Tagged"]
        trending = (await client.get("/api/v1/hashtags/trending")).json()
        assert [(t["tag"], t["score"]) for t in trending] == [("night", 19.0), ("rock", 19.0)]
        summary = (await client.get("/api/v1/hashtags/night")).json()
        assert (summary["shows"], summary["live"]) == (1, 1)
