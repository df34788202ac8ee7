"""Programming rules: how often one album or one artist may be heard in a sliding 3 hours.

`dmca` is the US webcasting performance complement (17 U.S.C. 114(j)(13)): in any 3 hours at
most 3 songs from one album, no more than 2 of them in a row, and at most 4 by one featured
artist, no more than 3 of them in a row. `strict` allows 2 per album (never 2 in a row) and 3
per artist (at most 2 in a row). Each song is judged at the moment it is (or would be) heard,
against the songs heard in the 3 hours before it, up to and including exactly 3 hours before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from onair.licensing.licences import Problem

WINDOW = timedelta(hours=3)

RuleSetName = Literal["dmca", "strict", "none"]


@dataclass(frozen=True)
class RuleSet:
    name: str
    album_total: int
    album_in_a_row: int
    artist_total: int
    artist_in_a_row: int
    window: timedelta = WINDOW


RULE_SETS: dict[str, RuleSet | None] = {
    "dmca": RuleSet("dmca", album_total=3, album_in_a_row=2, artist_total=4, artist_in_a_row=3),
    "strict": RuleSet("strict", album_total=2, album_in_a_row=1, artist_total=3, artist_in_a_row=2),
    "none": None,
}


@dataclass(frozen=True)
class Song:
    track_id: int
    album_id: int | None
    album_title: str | None
    artists: tuple[tuple[int, str], ...]
    """(artist id, name) of every credited artist."""


@dataclass(frozen=True)
class Slot:
    """A song heard (the play log) or to be heard (the queue) at `at`."""

    song: Song
    at: datetime


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def breaches(rules: RuleSet | None, slots: Sequence[Slot], index: int) -> list[Problem]:
    """The rules `slots[index]` breaks, given the slots before it (in the order heard)."""
    if rules is None:
        return []
    slot = slots[index]
    since = slot.at - rules.window
    earlier = [s for s in slots[:index] if since <= s.at <= slot.at]
    problems: list[Problem] = []
    song = slot.song
    if song.album_id is not None:
        same = [s for s in earlier if s.song.album_id == song.album_id]
        name = song.album_title or "this album"
        problems += _count_problems(
            "album",
            f"from the album {name!r}",
            1 + len(same),
            _run(earlier, lambda s: s.song.album_id == song.album_id),
            rules.album_total,
            rules.album_in_a_row,
            rules,
        )
    for artist_id, artist_name in song.artists:

        def by_artist(s: Slot, artist_id: int = artist_id) -> bool:
            return any(a == artist_id for a, _ in s.song.artists)

        same = [s for s in earlier if by_artist(s)]
        problems += _count_problems(
            "artist",
            f"by {artist_name}",
            1 + len(same),
            _run(earlier, by_artist),
            rules.artist_total,
            rules.artist_in_a_row,
            rules,
        )
    return problems


def _run(earlier: Sequence[Slot], same: Callable[[Slot], bool]) -> int:
    """How many songs in a row end with this one (itself included)."""
    run = 1
    for s in reversed(earlier):
        if not same(s):
            break
        run += 1
    return run


def _count_problems(
    kind: str,
    what: str,
    total: int,
    in_a_row: int,
    total_limit: int,
    row_limit: int,
    rules: RuleSet,
) -> list[Problem]:
    hours = round(rules.window.total_seconds() / 3600)
    problems = []
    if total > total_limit:
        problems.append(
            Problem(
                f"rule_{kind}_total",
                f"the {_ordinal(total)} song {what} in {hours} hours "
                f"({rules.name} rules allow {total_limit})",
            )
        )
    if in_a_row > row_limit:
        problems.append(
            Problem(
                f"rule_{kind}_in_a_row",
                f"the {_ordinal(in_a_row)} song {what} in a row "
                f"({rules.name} rules allow {row_limit} in a row)",
            )
        )
    return problems


def check_all(rules: RuleSet | None, slots: Sequence[Slot]) -> list[list[Problem]]:
    """`breaches` for every slot."""
    return [breaches(rules, slots, i) for i in range(len(slots))]
