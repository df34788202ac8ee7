"""Programming rules on crafted sequences: each rule, each boundary, the window sliding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onair.licensing.rules import RULE_SETS, RuleSet, Slot, Song, breaches, check_all

DMCA = RULE_SETS["dmca"]
STRICT = RULE_SETS["strict"]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_next_id = iter(range(1, 10_000))


def song(album: int | None = None, *artists: int) -> Song:
    return Song(
        track_id=next(_next_id),
        album_id=album,
        album_title=f"Album {album}" if album else None,
        artists=tuple((a, f"Artist {a}") for a in artists),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sequence(*songs: Song, every: float = 4.0) -> list[Slot]:
    return [Slot(s, at(i * every)) for i, s in enumerate(songs)]


def codes(slots: list[Slot], index: int = -1, rules: RuleSet | None = DMCA) -> set[str]:
    return {p.code for p in breaches(rules, slots, index % len(slots))}


def test_three_from_one_album_in_three_hours_pass_a_fourth_fails() -> None:
    # Spread out (never two in a row), so only the total counts.
    filler = [song(None, 100 + i) for i in range(4)]
    album = [song(1, 10 + i) for i in range(4)]
    slots = sequence(album[0], filler[0], album[1], filler[1], album[2], filler[2], album[3])
    assert codes(slots, 4) == set()  # the third: exactly at the limit
    assert codes(slots, 6) == {"rule_album_total"}
    message = breaches(DMCA, slots, 6)[0].message
    assert "4th song from the album 'Album 1' in 3 hours" in message and "allow 3" in message


def test_two_from_one_album_in_a_row_pass_a_third_in_a_row_fails() -> None:
    a, b, c = song(1, 1), song(1, 2), song(1, 3)
    slots = sequence(a, b, c)
    assert codes(slots, 1) == set()
    assert codes(slots, 2) == {"rule_album_in_a_row"}  # the third is also within the total


def test_four_by_one_artist_pass_a_fifth_fails_and_three_in_a_row_pass_a_fourth_fails() -> None:
    other = [song(None, 200 + i) for i in range(5)]
    by = [song(None, 7) for _ in range(5)]
    spread = sequence(by[0], other[0], by[1], other[1], by[2], other[2], by[3], other[3], by[4])
    assert codes(spread, 6) == set()
    assert codes(spread, 8) == {"rule_artist_total"}

    in_a_row = sequence(song(None, 8), song(None, 8), song(None, 8), song(None, 8))
    assert codes(in_a_row, 2) == set()
    assert codes(in_a_row, 3) == {"rule_artist_in_a_row"}


def test_a_run_is_broken_by_another_song_but_the_total_still_counts() -> None:
    x = [song(1, 1) for _ in range(3)]
    slots = sequence(x[0], x[1], song(None, 9), x[2])
    assert codes(slots) == set()  # 3 in 3 hours, at most 2 in a row
    slots = sequence(x[0], x[1], song(None, 9), x[2], song(1, 1))
    assert codes(slots) == {"rule_album_total"}


def test_every_credited_artist_counts() -> None:
    duet = [song(None, 1, 2) for _ in range(3)]
    slots = sequence(*duet, song(None, 2))
    problems = breaches(DMCA, slots, 3)
    assert [p.code for p in problems] == ["rule_artist_in_a_row"]
    assert "by Artist 2" in problems[0].message


def test_the_window_slides_a_play_3_hours_and_1_second_ago_no_longer_counts() -> None:
    album = [song(1, 10 + i) for i in range(4)]
    filler = song(None, 99)
    first = Slot(album[0], T0)
    middle = [Slot(filler, at(60)), Slot(album[1], at(70)), Slot(filler, at(80))]
    middle += [Slot(album[2], at(90)), Slot(filler, at(100))]
    exactly = [first, *middle, Slot(album[3], T0 + timedelta(hours=3))]
    assert codes(exactly) == {"rule_album_total"}  # exactly 3 hours ago still counts
    later = [first, *middle, Slot(album[3], T0 + timedelta(hours=3, seconds=1))]
    assert codes(later) == set()


def test_a_run_older_than_the_window_does_not_count() -> None:
    a, b = song(1, 1), song(1, 2)
    slots = [Slot(a, T0), Slot(b, T0 + timedelta(hours=2)), Slot(song(1, 3), at(181))]
    assert codes(slots) == set()  # the first left the window: 2 in a row, 2 in 3 hours
    slots[-1] = Slot(slots[-1].song, at(179))
    assert codes(slots) == {"rule_album_in_a_row"}


def test_strict_rules_two_per_album_never_two_in_a_row_three_per_artist() -> None:
    assert STRICT is not None
    a = [song(1, 10 + i) for i in range(3)]
    assert codes(sequence(a[0], a[1]), rules=STRICT) == {"rule_album_in_a_row"}
    spread = sequence(a[0], song(None, 50), a[1], song(None, 51), a[2])
    assert codes(spread, 2, rules=STRICT) == set()
    assert codes(spread, 4, rules=STRICT) == {"rule_album_total"}
    by = sequence(song(None, 5), song(None, 5), song(None, 5))
    assert codes(by, 1, rules=STRICT) == set()
    assert codes(by, 2, rules=STRICT) == {"rule_artist_in_a_row"}
    spread = sequence(*(s for i in range(4) for s in (song(None, 5), song(None, 60 + i))))
    assert codes(spread, 4, rules=STRICT) == set()
    assert codes(spread, 6, rules=STRICT) == {"rule_artist_total"}


def test_no_rules_allow_anything_and_check_all_judges_each_slot() -> None:
    same = sequence(*(song(1, 1) for _ in range(6)))
    assert all(not p for p in check_all(None, same))
    found = check_all(DMCA, same)
    assert [sorted(p.code for p in f) for f in found[:4]] == [
        [],
        [],
        ["rule_album_in_a_row"],  # three by the artist in a row are allowed
        ["rule_album_in_a_row", "rule_album_total", "rule_artist_in_a_row"],
    ]
