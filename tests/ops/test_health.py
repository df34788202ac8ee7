"""`/healthz` and `/readyz`: up while the loop runs; ready only when the node can serve."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.ops.router import Ops
from onair.settings import Settings
from tests.conftest import _service_missing


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        await upgrade_async(settings.resolved_database_url)
    return create_app(settings, FakeClock())


async def _get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path)
    finally:
        await app.state.onair.engine.dispose()


@pytest.fixture
async def ready_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = await _app(Settings(data_dir=tmp_path / "var"))
    yield app
    await app.state.onair.engine.dispose()


async def test_healthz_answers_while_the_loop_runs(ready_app: FastAPI) -> None:
    r = await _get(ready_app, "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_a_migrated_node_is_ready(ready_app: FastAPI) -> None:
    r = await _get(ready_app, "/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.postgres
async def test_a_migrated_postgresql_node_is_ready(tmp_path: Path, postgres_url: str) -> None:
    app = await _app(Settings(data_dir=tmp_path / "var", database_url=postgres_url))
    r = await _get(app, "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_an_unreachable_database_is_not_ready_and_says_so(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/onair"
    app = await _app(Settings(data_dir=tmp_path / "var", database_url=url), migrate=False)
    r = await _get(app, "/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["error"]["code"] == "not_ready"
    assert "database: unreachable" in body["error"]["message"]
    # What anyone may read: no URL, no port, no user.
    assert "postgres" not in r.text and "127.0.0.1" not in r.text
    # The process itself is fine.
    assert (await _get(app, "/healthz")).status_code == 200


@pytest.mark.unmigrated
async def test_a_database_behind_the_migrations_is_not_ready(tmp_path: Path) -> None:
    app = await _app(Settings(data_dir=tmp_path / "var"), migrate=False)
    r = await _get(app, "/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": r.json()["checks"]["migrations"]}
    assert r.json()["checks"]["migrations"].startswith("not migrated")

    await upgrade_async(app.state.onair.settings.resolved_database_url, "0015")
    r = await _get(app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["migrations"].startswith("at 0015")


async def test_redis_down_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "var", redis_url=f"redis://127.0.0.1:{_closed_port()}/0"
    )
    app = await _app(settings)
    r = await _get(app, "/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["checks"]["redis"].startswith("unreachable")
    assert r.json()["checks"]["database"] == "ok"
    assert "redis://" not in r.text


async def test_redis_up_is_ready_unless_the_node_drains(tmp_path: Path) -> None:
    probe = Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
    try:
        await probe.ping()
    except Exception as exc:  # redis' ConnectionError, or a timeout
        _service_missing(f"Redis ({exc.__class__.__name__})")
    finally:
        await probe.aclose()
    settings = Settings(
        data_dir=tmp_path / "var", redis_url="redis://127.0.0.1:6379/0", redis_prefix="test-ops:"
    )
    app = await _app(settings)
    r = await _get(app, "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
        "draining": "ok",
    }
    # A node being drained (onair node drain) takes no one new.
    app.state.onair.cluster.draining = True
    r = await _get(app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["draining"] == "draining"


async def test_other_parts_of_the_node_add_their_checks(ready_app: FastAPI) -> None:
    ops: Ops = ready_app.state.ops
    draining = True

    async def not_draining() -> str | None:
        return "draining" if draining else None

    ops.readiness.add("draining", not_draining)
    r = await _get(ready_app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "draining": "draining"}
    assert r.json()["error"]["message"] == "draining: draining"

    draining = False
    assert (await _get(ready_app, "/readyz")).status_code == 200


async def test_a_check_that_hangs_fails_instead_of_hanging_the_probe(ready_app: FastAPI) -> None:
    ops: Ops = ready_app.state.ops
    ops.readiness.timeout_s = 0.2

    async def hangs() -> str | None:
        await asyncio.Event().wait()
        return None

    ops.readiness.add("stuck", hangs)
    r = await _get(ready_app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["stuck"] == "no answer within 0.2 s"
