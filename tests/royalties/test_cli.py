"""`onair report royalties` as an operator runs it: options, the file or standard output, the
summary with the aggregate tuning hours, and refusals of bad periods."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onair.cli import cli
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.royalties import report
from onair.settings import Settings
from tests.royalties import world


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("ONAIR_DATA_DIR", str(path))
    monkeypatch.setenv("ONAIR_ROYALTIES_SERVICE_NAME", "Test Radio")
    monkeypatch.setenv("ONAIR_ROYALTIES_TRANSMISSION_CATEGORY", "B")
    path.mkdir(parents=True)
    url = Settings(data_dir=path).resolved_database_url
    upgrade(url)

    async def seed() -> None:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as db:
            await world.build(db)
        await engine.dispose()

    asyncio.run(seed())
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", "royalties", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_report_goes_to_standard_output_as_csv_by_default(data_dir: Path) -> None:
    code, out, err = _run("--from", world.MARCH[0], "--to", world.MARCH[1])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["sound_recording_title"]: int(r["actual_total_performances"]) for r in rows} == {
        title: n for title, (_, n, _k) in world.MARCH_ROWS.items()
    }
    assert "3 recordings" in err and "6 plays" in err and "37 performances" in err
    assert "aggregate tuning hours 46.000" in err
    assert "Counting performances" in err  # the progress bar, on standard error


def test_the_soundexchange_file_is_written_where_asked(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "march.txt"
    target.parent.mkdir()
    code, out, err = _run(
        "--from",
        world.MARCH[0],
        "--to",
        world.MARCH[1],
        "--format",
        "soundexchange",
        "--output",
        str(target),
    )
    assert code == 0, err
    assert out == ""
    lines = target.read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == "|".join(report.SOUNDEXCHANGE_COLUMNS)
    records = [line.split("|") for line in lines[1:-1]]
    assert {(r[0], r[1]) for r in records} == {("Test Radio", "B")}
    assert sum(int(r[7]) for r in records) == 37
    assert f"written to {target}" in err
    assert not list(target.parent.glob("*.part"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "2026-03-31", "--to", "2026-03-01"], "is after"),
        (["--from", "2026-13-01", "--to", "2026-12-31"], "not a date"),
        (["--from", "yesterday", "--to", "2026-12-31"], "not a date"),
    ],
)
def test_a_bad_period_is_refused_with_the_reason(
    data_dir: Path, args: list[str], says: str
) -> None:
    code, out, err = _run(*args)
    assert code == 2
    assert says in err
    assert out == ""


def test_options_are_checked_and_explained(data_dir: Path) -> None:
    code, _, err = _run("--from", "2026-03-01", "--to", "2026-03-31", "--format", "xml")
    assert code == 2 and "xml" in err
    code, _, err = _run("--from", "2026-03-01")
    assert code == 2 and "--to" in err
    result = CliRunner().invoke(cli, ["report", "royalties", "--help"])
    assert result.exit_code == 0
    for option in ("--from", "--to", "--format", "--output"):
        assert option in result.stdout
