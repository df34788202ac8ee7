"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from onair.db.migrate import upgrade_async
from onair.db.models import Base


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": lambda name, type_, _parent: (
                type_ != "table" or name in Base.metadata.tables
            )
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def _check(url: str) -> None:
    await upgrade_async(url)
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
    await engine.dispose()
    await upgrade_async(url)  # running it again changes nothing


@pytest.mark.sqlite_only
async def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    await _check(postgres_url)
