"""The report of use against a play log built by hand (tests/royalties/world.py): every total
worked out on paper, plays on the period's edges, skipped plays, both file layouts parsed back,
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from onair.royalties import report
from tests.royalties import world

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def _write(
    db: AsyncSession, period: tuple[str, str], fmt: report.ReportFormat
) -> tuple[str, report.Totals]:
    out = io.StringIO()
    totals = await report.write_report(
        db, report.Period.of(*period), fmt, out, service="OnAir Test", category="C", now=NOW
    )
    return out.getvalue(), totals


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _by_title(rows: list[dict[str, str]]) -> dict[str, tuple[str, int, int]]:
    """Title → (featured artist, performances, plays), the shape of world.MARCH_ROWS."""
    return {
        r["sound_recording_title"]: (
            r["featured_artist"],
            int(r["actual_total_performances"]),
            int(r["play_frequency"]),
        )
        for r in rows
    }


async def test_the_csv_report_adds_up_to_the_hand_counted_play_log(db: AsyncSession) -> None:
    await world.build(db)
    text, totals = await _write(db, world.MARCH, "csv")
    rows = _csv_rows(text)
    assert list(rows[0]) == list(report.CSV_COLUMNS)
    assert _by_title(rows) == world.MARCH_ROWS
    blue = next(r for r in rows if r["sound_recording_title"] == "Blue Hour")
    assert (blue["isrc"], blue["album_title"], blue["marketing_label"]) == (
        "USABC2600001",
        "Night Songs",
        "Lantern Records",
    )
    wind = next(r for r in rows if r["sound_recording_title"] == "Second Wind")
    assert wind["isrc"] == ""  # no ISRC: album and label identify it
    assert (totals.recordings, totals.plays, totals.performances) == (3, 6, 37)
    assert totals.aggregate_tuning_hours == pytest.approx(world.MARCH_ATH)


async def test_the_soundexchange_layout_parses_back_to_the_same_totals(db: AsyncSession) -> None:
    await world.build(db)
    text, totals = await _write(db, world.MARCH, "soundexchange")
    lines = text.split("\r\n")
    assert lines[-1] == ""  # every line ends in CRLF, the last too
    header, *records = lines[:-1]
    assert header.split("|") == list(report.SOUNDEXCHANGE_COLUMNS)
    fields = [line.split("|") for line in records]
    assert all(len(f) == len(report.SOUNDEXCHANGE_COLUMNS) for f in fields), fields
    parsed = [dict(zip(report.SOUNDEXCHANGE_COLUMNS, f, strict=True)) for f in fields]
    assert {p["NAME_OF_SERVICE"] for p in parsed} == {"OnAir Test"}
    assert {p["TRANSMISSION_CATEGORY"] for p in parsed} == {"C"}
    got = {
        p["SOUND_RECORDING_TITLE"]: (
            p["FEATURED_ARTIST"],
            int(p["ACTUAL_TOTAL_PERFORMANCES"]),
            int(p["PLAY_FREQUENCY"]),
        )
        for p in parsed
    }
    # The pipe inside a name cannot stay: it would split the field.
    want = {t: (a.replace(" | ", " "), n, k) for t, (a, n, k) in world.MARCH_ROWS.items()}
    assert got == want
    edge = next(p for p in parsed if p["SOUND_RECORDING_TITLE"] == "Edge Case")
    assert (edge["ALBUM_TITLE"], edge["MARKETING_LABEL"], edge["ISRC"]) == (
        "Odd Album",
        "Edge Lab",
        "GBXYZ2600003",
    )
    assert {p["AGGREGATE_TUNING_HOURS"] for p in parsed} == {""}  # census: performances instead
    assert sum(int(p["ACTUAL_TOTAL_PERFORMANCES"]) for p in parsed) == totals.performances == 37


async def test_a_play_counts_in_the_period_it_started_in(db: AsyncSession) -> None:
    await world.build(db)
    text, totals = await _write(db, world.FEBRUARY, "csv")
    rows = _csv_rows(text)
    assert _by_title(rows) == world.FEBRUARY_ROWS
    assert totals.aggregate_tuning_hours == pytest.approx(world.FEBRUARY_ATH)
    # One day: 1 March holds Second Wind's play at 00:00:00 and show A's and D's listening.
    text, totals = await _write(db, ("2026-03-01", "2026-03-01"), "csv")
    rows = _csv_rows(text)
    assert [(r["sound_recording_title"], r["actual_total_performances"]) for r in rows] == [
        ("Second Wind", "3")
    ]
    assert totals.aggregate_tuning_hours == pytest.approx(4 + 2 + 24)
    # April holds the play at 00:00:00 on the 1st, and show B's last half hour.
    _, totals = await _write(db, ("2026-04-01", "2026-04-30"), "csv")
    assert (totals.plays, totals.performances) == (1, 4)
    assert totals.aggregate_tuning_hours == pytest.approx(3.0)


async def test_a_period_with_no_plays_is_a_header_and_zeros(db: AsyncSession) -> None:
    await world.build(db)
    text, totals = await _write(db, ("2025-01-01", "2025-12-31"), "soundexchange")
    assert text == "|".join(report.SOUNDEXCHANGE_COLUMNS) + "\r\n"
    assert (totals.recordings, totals.plays, totals.performances) == (0, 0, 0)
    assert totals.aggregate_tuning_hours == 0


async def test_rows_are_read_in_batches(db: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.build(db)
    monkeypatch.setattr(report, "BATCH", 1)
    rows = [r async for r in report.recordings(db, report.Period.of(*world.MARCH))]
    assert [(r.title, r.performances, r.plays) for r in rows] == [
        (t, n, k) for t, (_, n, k) in world.MARCH_ROWS.items()
    ]
    assert await report.count_recordings(db, report.Period.of(*world.MARCH)) == 3


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-03-31", "2026-03-01", "is after"),
        ("2026-02-30", "2026-03-01", "not a date"),
        ("March", "2026-03-01", "not a date"),
    ],
)
def test_a_bad_period_is_refused_with_the_reason(first: str, last: str, message: str) -> None:
    with pytest.raises(report.PeriodError, match=message):
        report.Period.of(first, last)


def test_file_names_follow_soundexchange_naming() -> None:
    period = report.Period.of(*world.MARCH)
    assert (
        report.file_name(period, "soundexchange", "On Air!", "C") == "OnAir20260301_20260331_C.txt"
    )
    assert report.file_name(period, "csv", "OnAir", "C") == "royalties-20260301-20260331.csv"
