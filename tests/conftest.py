from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts import passwords
from onair.app import create_app
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade, upgrade_async
from onair.settings import Settings


def shared_data() -> Path:
    """The team's real test data, read in place: ONAIR_SHARED_DATA, else ../shared/data beside
    the checkout, else the team machine's /work/shared/data (for clones made elsewhere)."""
    override = os.environ.get("ONAIR_SHARED_DATA")
    if override:
        return Path(override)
    candidates = [
        Path(__file__).resolve().parents[2] / "shared" / "data",
        Path("/work/shared/data"),
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def require_shared(*parts: str) -> Path:
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set ONAIR_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> Iterator[None]:
    """Argon2id still, but with the smallest cost: at RFC 9106's memory and passes a hash takes
    about a second on this two-core machine, and the suite signs up hundreds of users. The
    parameters are in each hash, so a production hash still verifies (and would be upgraded)."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_HASHER", quick)
        yield


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
    # httpx's ASGITransport runs no lifespan, so shut down what the app started by hand.
    await application.state.onair.stations.aclose()
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


def _service_missing(what: str) -> None:
    if os.environ.get("ONAIR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (ONAIR_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable on 127.0.0.1; start it to run this test")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, uniquely named PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    import secrets

    import asyncpg

    admin_dsn = os.environ.get(
        "ONAIR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _service_missing(f"PostgreSQL ({exc.__class__.__name__})")
    name = f"onair_test_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database: SQLite, then PostgreSQL when the server is there."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'onair.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    upgrade(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on `database_url`, for tests of the services without the app."""
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()
