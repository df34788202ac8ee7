"""The same migrations and the same API on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from onair.app import create_app
from onair.catalog.service import CatalogWriter, TrackInput
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings
from tests.conftest import sign_up

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_client(postgres_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await upgrade_async(postgres_url)
    app = create_app(Settings(data_dir=tmp_path, database_url=postgres_url), FakeClock())
    async with app.state.onair.sessions() as db:
        await CatalogWriter(db, app.state.onair.clock).write(
            [
                TrackInput(
                    source="test",
                    source_key="test:pg",
                    title="Señor Blue",
                    artists=("Café Trio",),
                    genres=("Jazz",),
                    audio_path="/x.mp3",
                )
            ]
        )
        await db.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pg") as client:
        yield client
    await app.state.onair.engine.dispose()


async def test_sign_up_create_show_and_queue_on_postgres(pg_client: httpx.AsyncClient) -> None:
    await sign_up(pg_client, "pg_host")
    show = (await pg_client.post("/api/v1/shows", json={"title": "PG", "hashtags": ["x"]})).json()
    found = (await pg_client.get("/api/v1/catalog/search", params={"q": "senor"})).json()
    assert [t["title"] for t in found["tracks"]] == ["Señor Blue"]
    r = await pg_client.post(
        f"/api/v1/shows/{show['id']}/queue", json={"track_id": found["tracks"][0]["id"]}
    )
    assert r.status_code == 201, r.text
    assert (await pg_client.post(f"/api/v1/shows/{show['id']}/live")).json()["status"] == "live"
    live = (await pg_client.get("/api/v1/shows", params={"status": "live"})).json()
    assert [s["title"] for s in live] == ["PG"]


async def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    """Several `onair serve` nodes starting at once each upgrade the shared database: one
    migrates, the others wait for it and find the schema at head."""
    import asyncio
    import sys

    import asyncpg

    # Processes, as nodes are (Alembic's context is one per process, not per thread).
    script = "import sys; from onair.db.migrate import upgrade; upgrade(sys.argv[1])"
    nodes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, postgres_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    for node in nodes:
        _, err = await asyncio.wait_for(node.communicate(), 120)
        assert node.returncode == 0, err.decode()
    conn = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()
    from alembic.script import ScriptDirectory

    from onair.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
    assert versions == [head]
