"""How a ranked match is asked of PostgreSQL (onair.catalog.pg_plans): the plan that the words'
counts say is cheaper, walking rank_key for common words and looking rare ones up."""

from __future__ import annotations

import pytest

from onair.catalog import pg_plans, search
from onair.catalog.pg_plans import Atom, LexemeCounts, RankedMatch, costs, parse

# A million documents: "0>the" in a tenth of them, "0love" in 6 %, "0sugar" in 0.2 %; every
# word not listed is in fewer than 0.01 %.
COUNTS = LexemeCounts.of(
    1_000_000,
    {"0>the": 0.11, "0>l": 0.2, "0>lo": 0.09, "0love": 0.064, "0>s": 0.23, "0sugar": 0.002,
     "0>star": 0.004, "~0": 0.1, "~2": 0.8, "zzz": 0.0001},
)  # fmt: skip


def plan(tsquery: str, limit: int = 100) -> str:
    return "walk" if costs(parse(tsquery), COUNTS, limit).walk else "lookup"


def test_the_engines_tsqueries_parse_into_parts_of_alternatives() -> None:
    assert parse("('0>star' | '1>star') & '0x':*") == [
        [Atom("0>star", False), Atom("1>star", False)],
        [Atom("0x", True)],
    ]


def test_common_words_are_walked_and_rare_ones_looked_up() -> None:
    assert plan("'0love'") == "walk"
    assert plan("'0>the'") == "walk"
    assert plan("'0sugar'") == "lookup"
    assert plan("('0sugar' | '0lugar' | '0rugar')") == "lookup"  # a typo's corrections
    assert plan("'0unlisted'") == "lookup"
    # A rare word with a common one: the rare one bounds the matches.
    assert plan("'0>the' & '0sugar'") == "lookup"


def test_a_prefix_that_another_word_begins_with_is_not_counted_twice() -> None:
    # Every word beginning with "star" begins with "s": "star s" is as common as "star".
    assert Atom("0>star", False).implies(Atom("0>s", False))
    assert Atom("0starlight", False).implies(Atom("0>st", False))
    assert not Atom("1>star", False).implies(Atom("0>s", False))
    assert not Atom("0>s", False).implies(Atom("0>star", False))
    alone = costs(parse("'0>star'"), COUNTS, 100)
    both = costs(parse("'0>star' & '0>s'"), COUNTS, 100)
    assert both.lookup_us == pytest.approx(alone.lookup_us)


def test_the_plan_is_written_so_that_only_its_index_can_answer() -> None:
    walk = RankedMatch("track_search", ("title",), "'0love'", 20, ((">=", 5),)).sql(COUNTS)
    assert walk == (
        "SELECT rank_key, title FROM track_search WHERE ts_match_vq(lexemes, '''0love'''::tsquery)"
        " AND rank_key >= 5 ORDER BY rank_key LIMIT 20"
    )
    lookup = RankedMatch("track_search", ("title",), "'0sugar'", 20).sql(COUNTS)
    assert lookup == (
        "SELECT rank_key, title FROM track_search WHERE lexemes @@ '''0sugar'''::tsquery"
        " ORDER BY (rank_key + 0) LIMIT 20"
    )
    # Without counts (a table never analysed) the planner chooses.
    planner = RankedMatch("track_search", ("title",), "'0sugar'", 20).sql(None)
    assert "lexemes @@" in planner and "ORDER BY rank_key LIMIT" in planner


def test_a_bound_statement_has_one_text_for_every_search_of_its_shape() -> None:
    # The same plan with the values as parameters, so asyncpg keeps the statement prepared.
    love = RankedMatch("track_search", ("title",), "'0love'", 20, ((">=", 5),)).bound(COUNTS)
    assert love == (
        "SELECT rank_key, title FROM track_search WHERE ts_match_vq(lexemes, $1::tsquery)"
        " AND rank_key >= $2 ORDER BY rank_key LIMIT $3",
        ("'0love'", 5, 20),
    )
    the = RankedMatch("track_search", ("title",), "'0>the'", 10, ((">=", 7),)).bound(COUNTS)
    assert the[0] == love[0] and the[1] == ("'0>the'", 7, 10)
    sugar = RankedMatch("show_search", ("title",), "'0sugar'", 5, ((">=", 0),), band=1)
    sql, values = sugar.bound(COUNTS)
    assert sql == (
        "SELECT rank_key, title FROM show_search WHERE lexemes @@ $1::tsquery"
        " AND (rank_key + 0) >= $2 ORDER BY (rank_key + 0) LIMIT $3"
    )
    assert values == ("'0sugar' & '~1'", 0, 5)


def test_named_placeholders_become_numbered_ones() -> None:
    sql, values = search._numbered(
        "SELECT x::text FROM t WHERE a >= :start AND b = ANY(CAST(:ids AS integer[]))"
        " AND c < :start LIMIT :n",
        {"start": "lo", "ids": [1, 2], "n": 3, "unused": 4},
    )
    assert sql == (
        "SELECT x::text FROM t WHERE a >= $1 AND b = ANY(CAST($2 AS integer[])) AND c < $1 LIMIT $3"
    )
    assert values == ["lo", [1, 2], 3]
    with pytest.raises(KeyError):
        search._numbered("SELECT :missing", {})


def test_a_band_is_a_lexeme_to_a_lookup_and_a_range_to_a_walk() -> None:
    ranges = ((">=", 0), ("<", 1 << 36))
    rare = RankedMatch("show_search", ("title",), "'0sugar'", 5, ranges, band=0).sql(COUNTS)
    assert "'''0sugar'' & ''~0'''::tsquery" in rare and "(rank_key + 0) < 68719476736" in rare
    common = RankedMatch("show_search", ("title",), "'0>the'", 5, ranges, band=2).sql(COUNTS)
    assert "~2" not in common and "rank_key < 68719476736" in common


def test_counts_come_from_the_statistics_row() -> None:
    row = (2000.0, ["0a", "0b"], [0.5, 0.25, 0.25, 0.5, 0.0])
    counts = pg_plans.counts_from_row(row)
    assert counts is not None
    assert counts.share("0a") == 0.5 and counts.share("0b") == 0.25
    assert counts.share("0c") < 0.25  # not listed: rarer than the least listed
    assert counts.prefix_share("0") == pytest.approx(0.75 + counts.floor)
    assert pg_plans.counts_from_row((10.0, None, None)) is None  # never analysed
    assert pg_plans.counts_from_row(None) is None
