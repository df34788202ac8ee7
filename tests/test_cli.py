"""The operator's commands, run as an operator would: `onair ...` with ONAIR_* settings."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from onair.accounts.models import Role, User
from onair.catalog import search
from onair.catalog.models import Track
from onair.catalog.service import tracks_by_ids
from onair.cli import cli
from onair.db.base import make_engine, make_sessionmaker
from onair.settings import Settings
from tests.conftest import require_shared

M = TypeVar("M", User, Track)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ONAIR_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def _rows(data_dir: Path, model: type[M]) -> list[M]:
    async def work() -> list[M]:
        engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
        async with make_sessionmaker(engine)() as db:
            rows = list((await db.scalars(select(model))).unique())
        await engine.dispose()
        return rows

    return asyncio.run(work())


def _search(data_dir: Path, query: str) -> list[str]:
    async def work() -> list[str]:
        engine = make_engine(Settings(data_dir=data_dir).resolved_database_url)
        async with make_sessionmaker(engine)() as db:
            ids = await search.search_track_ids(db, query)
            titles = [t.title for t in await tracks_by_ids(db, ids)]
        await engine.dispose()
        return titles

    return asyncio.run(work())


def test_help_explains_every_command() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in ("serve", "db", "user", "catalog"):
        assert name in top.output
    cat = runner.invoke(cli, ["catalog", "--help"])
    for name in ("import", "import-csv", "demo"):
        assert name in cat.output


def test_user_create_admin_makes_the_first_operator(data_dir: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "user",
            "create",
            "root_op",
            "--email",
            "op@example.org",
            "--password",
            "pw-123456",
            "--admin",
        ],
    )
    assert r.exit_code == 0, r.output
    users = _rows(data_dir, User)
    assert [(u.username, u.role) for u in users] == [("root_op", Role.admin)]
    again = runner.invoke(
        cli, ["user", "create", "root_op", "--email", "x@example.org", "--password", "pw-123456"]
    )
    assert again.exit_code == 1 and "already registered" in again.output


def test_user_create_without_password_and_no_terminal_says_so(data_dir: Path) -> None:
    r = CliRunner().invoke(cli, ["user", "create", "nopw", "--email", "n@example.org"])
    assert r.exit_code == 2
    assert "--password" in r.output


@pytest.mark.media
def test_catalog_import_reads_real_files_and_reports_the_broken_one(
    data_dir: Path, tmp_path: Path
) -> None:
    audio = require_shared("audio")
    folder = tmp_path / "music"
    folder.mkdir()
    broken = folder / "broken.mp3"
    broken.write_text("this is not audio")
    r = CliRunner().invoke(cli, ["catalog", "import", str(audio), str(folder), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "broken.mp3" in r.output and "rejected" in r.output
    tracks = _rows(data_dir, Track)
    titles = {t.title for t in tracks}
    assert len(tracks) == len(list(audio.glob("*.ogg")))
    assert any("Fishin" in t for t in titles)
    fishing = next(t for t in tracks if "Fishin" in t.title)
    assert fishing.artists == ["Karissa Hobbs"]
    assert 130 < fishing.duration_s < 136
    assert -40 < fishing.loudness_lufs < -5
    # The imported recordings are found as a listener would type: a prefix, a typo, no accents.
    for query, title_part in [
        ("lets go fis", "Fishin"),
        ("sugr plum", "Sugar Plum"),
        ("hungarian", "Hungarian"),
    ]:
        assert any(title_part in t for t in _search(data_dir, query)), query
    # A second import of the same files updates them in place.
    again = CliRunner().invoke(cli, ["catalog", "import", str(audio)])
    assert again.exit_code == 0
    assert len(_rows(data_dir, Track)) == len(tracks)
    shutil.rmtree(folder)
