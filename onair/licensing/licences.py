"""Whether a recording's licence lets a show play it at a given moment: pure, so tests move
the time across windows.

A licence's window runs from the start of `starts_on` to the end of `ends_on`, both in UTC and
both inclusive: a licence that ends on 31 March may be played until 23:59:59 UTC that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from onair.catalog.models import Licence
from onair.licensing.territories import territory_name


@dataclass(frozen=True)
class Problem:
    """Why a song may not (or should not) go on a show's queue."""

    code: str
    message: str
    blocking: bool = True
    """False for warnings the host may override (programming rules in warn mode)."""


def window_opens(licence: Licence) -> datetime | None:
    if licence.starts_on is None:
        return None
    return _midnight(licence.starts_on)


def window_closes(licence: Licence) -> datetime | None:
    """The first moment the licence no longer covers."""
    if licence.ends_on is None:
        return None
    return _midnight(licence.ends_on + timedelta(days=1))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def licensed_territories(licence: Licence) -> frozenset[str] | None:
    """The codes a licence names; None for worldwide ("*")."""
    codes = {t.strip().upper() for t in licence.territories.split(",") if t.strip()}
    if not codes or "*" in codes:
        return None
    return frozenset(codes)


def territory_problem(licence: Licence | None, territories: Sequence[str]) -> Problem | None:
    if licence is None:
        return Problem("unlicensed", "no licence is on file for this recording")
    covered = licensed_territories(licence)
    if covered is None:
        return None
    missing = [t for t in territories if t not in covered]
    if not missing:
        return None
    names = ", ".join(f"{territory_name(t)} ({t})" for t in missing)
    return Problem(
        "licence_territory",
        f"not licensed in {names}, where this show is heard "
        f"(licensed in {', '.join(sorted(covered))})",
    )


def window_problem(licence: Licence | None, at: datetime) -> Problem | None:
    if licence is None:
        return Problem("unlicensed", "no licence is on file for this recording")
    opens, closes = window_opens(licence), window_closes(licence)
    if opens is not None and at < opens:
        return Problem("licence_not_started", f"its licence starts on {licence.starts_on}")
    if closes is not None and at >= closes:
        return Problem("licence_ended", f"its licence ended on {licence.ends_on}")
    return None


def licence_problem(
    licence: Licence | None, territories: Sequence[str], at: datetime
) -> Problem | None:
    """Why the recording may not be played in `territories` at `at`, or None."""
    return territory_problem(licence, territories) or window_problem(licence, at)


def next_change(licence: Licence | None, after: datetime) -> datetime | None:
    """The next moment after `after` at which the licence starts or stops covering."""
    if licence is None:
        return None
    moments = [m for m in (window_opens(licence), window_closes(licence)) if m and m > after]
    return min(moments, default=None)
