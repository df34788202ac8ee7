"""Licence windows and territories, judged at moments a test chooses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from onair.catalog.models import Licence
from onair.licensing.licences import licence_problem, next_change
from onair.licensing.territories import listener_territory, parse_territories, territory_code
from onair.settings import Settings


def licence(
    territories: str = "*", starts: date | None = None, ends: date | None = None
) -> Licence:
    return Licence(territories=territories, starts_on=starts, ends_on=ends)


def code(lic: Licence | None, at: datetime, where: tuple[str, ...] = ("US",)) -> str | None:
    problem = licence_problem(lic, where, at)
    return problem.code if problem else None


def test_a_window_runs_from_its_first_day_to_the_end_of_its_last_in_utc() -> None:
    lic = licence(starts=date(2026, 3, 1), ends=date(2026, 3, 31))
    opens = datetime(2026, 3, 1, tzinfo=UTC)
    closes = datetime(2026, 4, 1, tzinfo=UTC)
    assert code(lic, opens - timedelta(seconds=1)) == "licence_not_started"
    assert code(lic, opens) is None
    assert code(lic, closes - timedelta(seconds=1)) is None
    assert code(lic, closes) == "licence_ended"
    assert next_change(lic, opens - timedelta(days=3)) == opens
    assert next_change(lic, opens) == closes
    assert next_change(lic, closes) is None
    assert next_change(licence(), opens) is None


def test_every_one_of_the_shows_territories_must_be_covered() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert code(licence("*"), now, ("US", "CA")) is None
    assert code(licence("US,CA,MX"), now, ("US", "CA")) is None
    problem = licence_problem(licence("US"), ("US", "CA"), now)
    assert problem is not None and problem.code == "licence_territory"
    assert "Canada (CA)" in problem.message and "licensed in US" in problem.message
    assert code(licence(" us , ca "), now, ("US", "CA")) is None  # spacing and case
    assert code(None, now) == "unlicensed"


def test_territory_codes_are_real_iso_3166_countries() -> None:
    assert parse_territories("us, CA,us") == ("US", "CA")
    assert territory_code("gb") == "GB"
    for not_a_country in ("UK", "XX", "T1", "", "USA", None):
        assert territory_code(not_a_country) is None
    with pytest.raises(ValueError, match="'UK' is not"):
        parse_territories("US,UK")
    with pytest.raises(ValueError):
        Settings(territories="EU")


def test_a_listener_is_where_the_header_says_else_their_account_else_the_default() -> None:
    service = ("US", "CA")
    assert listener_territory(header="de", account="CA", territories=service).code == "DE"
    fallback = listener_territory(header="XX", account="ca", territories=service)
    assert (fallback.code, fallback.source) == ("CA", "account")
    default = listener_territory(header=None, account=None, territories=service)
    assert (default.code, default.source) == ("US", "default")
    assert default.allowed(service)
    assert not listener_territory(header="FR", account=None, territories=service).allowed(service)
