from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from onair.app import create_app
from onair.clock import FakeClock
from onair.db.migrate import upgrade_async
from onair.settings import Settings


def shared_data() -> Path:
    """The team's real test data (../shared/data beside the checkout), read in place."""
    override = os.environ.get("ONAIR_SHARED_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"


def require_shared(*parts: str) -> Path:
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set ONAIR_SHARED_DATA)")
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", signup_per_hour=1000, login_per_minute=1000)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    application = create_app(settings, clock)
    yield application
    await application.state.onair.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def sign_up(
    client: httpx.AsyncClient, username: str, password: str = "correct horse"
) -> dict[str, object]:
    r = await client.post(
        "/api/v1/accounts/signup",
        json={"username": username, "email": f"{username}@example.org", "password": password},
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body
