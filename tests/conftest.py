from __future__ import annotations

import functools
import inspect
import os
import sys
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from onair import cli as onair_cli
from onair.accounts import passwords
from onair.app import create_app
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade, upgrade_async
from onair.settings import Settings
from tests.databases import ADMIN_DSN, PostgresDatabases, SwitchedDatabaseUrl, on_postgres, run_sync


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


# --- the database switch: ONAIR_TEST_DATABASE=postgresql (tests/databases.py) ---------------


@pytest.fixture(autouse=True, scope="session")
def _test_databases() -> Iterator[PostgresDatabases | None]:
    """Under PostgreSQL, every Settings without a database_url gets its data dir's own database."""
    if not on_postgres():
        yield None
        return
    try:
        run_sync(_postgres_version)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.exit(f"ONAIR_TEST_DATABASE=postgresql but PostgreSQL is not reachable: {exc!r}", 3)
    databases = PostgresDatabases()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Settings, "resolved_database_url", SwitchedDatabaseUrl(databases))
            yield databases
    finally:
        databases.close()


async def _postgres_version() -> str:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=3)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@pytest.fixture(autouse=True, scope="module")
def _module_databases(_test_databases: PostgresDatabases | None) -> Iterator[None]:
    """Databases made for module fixtures (or data dirs outside a test's tmp_path) are dropped
    with the module."""
    if _test_databases is None:
        yield
        return
    with _test_databases.module():
        yield


@pytest.fixture(autouse=True)
def _test_owns_databases(
    _test_databases: PostgresDatabases | None, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Databases of data dirs in the test's tmp_path are dropped when the test is over. They
    are copies of the migrated template, or empty ones for a test marked `unmigrated`."""
    if _test_databases is None:
        yield
        return
    unmigrated = request.node.get_closest_marker("unmigrated") is not None
    with _test_databases.test(request.getfixturevalue("tmp_path"), unmigrated=unmigrated):
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under PostgreSQL, runs only what the switch changes: tests marked sqlite_only, tests that
    choose their databases themselves (database_url, postgres_url: the same in both passes) and
    tests whose code and fixtures never reach OnAir's Settings, app, engine or CLI (pure audio,
    studio, codecs) are deselected, as they run alike in the SQLite pass."""
    if not on_postgres():
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    seen: dict[int, bool] = {}
    for item in items:
        (keep if _runs_on_switched_database(item, seen) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_OWN_BACKEND = {"database_url", "postgres_url"}
_SWITCH_FIXTURES = {"_test_databases", "_module_databases", "_test_owns_databases"}


def _runs_on_switched_database(item: pytest.Item, seen: dict[int, bool]) -> bool:
    if item.get_closest_marker("sqlite_only") is not None:
        return False
    names = set(getattr(item, "fixturenames", ()))
    if names & _OWN_BACKEND:
        return False
    info = getattr(item, "_fixtureinfo", None)
    funcs: list[Any] = [getattr(item, "obj", None)]
    if info is not None:
        for name in names - _SWITCH_FIXTURES:
            for fixturedef in info.name2fixturedefs.get(name, ()):
                funcs.append(fixturedef.func)
    return any(_reaches_database(f, seen) for f in funcs if f is not None)


def _database_roots() -> tuple[object, ...]:
    return (Settings, create_app, make_engine, upgrade, upgrade_async, onair_cli.cli)


def _reaches_database(obj: Any, seen: dict[int, bool]) -> bool:
    """Whether `obj` (a test, a fixture, a helper of the tests) names one of the roots, directly or
    through the functions and classes of tests/ it names."""
    obj = _unwrapped(obj)  # @contextmanager, functools.wraps
    key = id(obj)
    if key in seen:
        return seen[key]
    seen[key] = False  # cycles
    found = False
    if any(obj is root for root in _database_roots()):
        found = True
    elif isinstance(obj, types.FunctionType):
        found = _code_reaches(obj.__code__, obj.__globals__, seen)
    elif isinstance(obj, type) and _in_tests(obj):
        found = any(
            _reaches_database(value, seen)
            for value in vars(obj).values()
            if isinstance(value, (types.FunctionType, staticmethod, classmethod, property))
            for value in _unwrap(value)
        )
    elif isinstance(obj, functools.partial):
        found = _reaches_database(obj.func, seen)
    seen[key] = found
    return found


def _unwrap(value: Any) -> list[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        return [value.__func__]
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset) if f is not None]
    return [value]


def _unwrapped(value: Any) -> Any:
    try:
        return inspect.unwrap(value) if callable(value) else value
    except ValueError:  # a cycle of __wrapped__
        return value


_TESTS = Path(__file__).resolve().parent


def _in_tests(obj: Any) -> bool:
    """Whether `obj` is a function or class written in tests/ (a test, a fixture, a helper)."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        filename = code.co_filename
    else:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        filename = getattr(module, "__file__", None) or ""
    return bool(filename) and Path(filename).is_relative_to(_TESTS)


def _code_reaches(code: types.CodeType, globals_: dict[str, Any], seen: dict[int, bool]) -> bool:
    for name in code.co_names:
        value = globals_.get(name)
        if value is None:
            continue
        if any(value is root for root in _database_roots()):
            return True
        if isinstance(value, types.ModuleType):
            continue
        if _in_tests(_unwrapped(value)) and _reaches_database(value, seen):
            return True
    return any(
        _code_reaches(const, globals_, seen)
        for const in code.co_consts
        if isinstance(const, types.CodeType)
    )


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
