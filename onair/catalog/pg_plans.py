"""How PostgreSQL is asked for a search index's best matches: walking ``rank_key`` or looking
the words up in the GIN index, chosen here from the words' counts rather than by the planner.

A ranked match ("the first 100 documents in ranking order whose lexemes match this tsquery",
migration 0009) has two plans:

- the **walk**: read ``rank_key``'s b-tree in order, test each document, stop after the LIMIT.
  Its cost is the documents read, about LIMIT / (share of documents matching): cheap for common
  words, a scan of most of the index for rare ones;
- the **lookup**: gather the matches from the GIN index, fetch each, sort them, keep the LIMIT.
  Its cost is the matches (and, for a prefix, every posting of every word it begins): cheap for
  rare words, a fetch of a third of the index for "love".

The planner picks between them by its own cost model, and it picks badly in both directions:
it multiplies the words' shares as if they were independent, counts a list of a word's typo
corrections as that many times more common, and prices a GIN lookup of one rare word AND one
common word as if it read the common word's whole posting list (GIN skips it). So a search for
"rugar" (eight corrections, 2,158 matches) walked 46,000 documents in 51 ms, where the lookup
takes 6.

So the statement is written in the plan chosen here: the walk tests the tsquery with
``ts_match_vq()``, which no index can answer, so only ``rank_key``'s b-tree remains; the lookup
orders by ``rank_key + 0``, which no b-tree returns in order, so only the GIN index remains. The
counts are PostgreSQL's own statistics of ``lexemes`` (the share of documents holding each of
its 10,000 most common lexemes; every other is rarer than the least of them), read once per
connection and again every few minutes.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Costs in microseconds, measured on the bench world (bench/discovery.py, a million tracks,
# everything in memory): a walked document is a b-tree step and a random heap page; a match
# looked up is a heap page and its share of the sort; a posting of a prefix's words (longer
# than migration 0015's) is gathered into a bitmap before anything else happens.
WALK_US = 3.5
MATCH_US = 1.7
PREFIX_POSTING_US = 0.05
POSTING_US = 0.01
# A walk of several words meets their first matches later than an even spread would say,
# often far later: titles are ranked shortest first, and two title words need a title of two
# ("the" and "lov" in the first 13,500 documents by that count, in fact after 52,000). A
# lookup's cost is its matches, which independence counts well for words this common.
WALK_RISK = 3.0
TOGETHER = 1.5
COUNTS_MAX_AGE_S = 300.0
_ATOM = re.compile(r"'((?:[^'\\]|\\.)*)'(:\*)?")


@dataclass(frozen=True)
class LexemeCounts:
    """A search table's documents and the shares of them holding its most common lexemes."""

    rows: float
    lexemes: tuple[str, ...]
    """Sorted, so the lexemes a prefix begins are a range of them."""
    cumulative: tuple[float, ...]
    """cumulative[i]: the shares of lexemes[:i] added up (len(lexemes) + 1 values)."""
    floor: float
    """Every lexeme not listed is in fewer documents than this share."""

    @classmethod
    def of(cls, rows: float, shares: Mapping[str, float]) -> LexemeCounts:
        lexemes = tuple(sorted(shares))
        cumulative = (0.0, *itertools.accumulate(shares[x] for x in lexemes))
        floor = min(shares.values(), default=1.0 / max(rows, 1.0))
        return cls(max(rows, 0.0), lexemes, cumulative, floor)

    def share(self, lexeme: str) -> float:
        """The share of documents holding `lexeme`."""
        i = bisect.bisect_left(self.lexemes, lexeme)
        if i < len(self.lexemes) and self.lexemes[i] == lexeme:
            return self.cumulative[i + 1] - self.cumulative[i]
        return self.floor / 2

    def prefix_share(self, prefix: str) -> float:
        """At most the share of documents holding a lexeme that begins with `prefix` (the
        listed ones added up, as if no document held two, and the unlisted ones guessed)."""
        lo = bisect.bisect_left(self.lexemes, prefix)
        hi = bisect.bisect_left(self.lexemes, prefix + "\U0010ffff")
        return min(1.0, self.cumulative[hi] - self.cumulative[lo] + self.floor)


@dataclass(frozen=True)
class Atom:
    lexeme: str
    prefix: bool

    def implies(self, other: Atom) -> bool:
        """Every document holding this holds `other`: `other` is a stored prefix (migration
        0015: "0>s") of this word or prefix in the same column ("0star", "0>star")."""
        column, _, begins = other.lexeme.partition(">")
        if not begins or not column.isdigit():
            return False
        word = self.lexeme[len(column) :].removeprefix(">")
        return self.lexeme.startswith(column) and word.startswith(begins)


def parse(tsquery: str) -> list[list[Atom]]:
    """The engine's tsqueries (`onair.catalog.search`) are an AND of parts, each one lexeme or
    an OR of them in parentheses: `'0a' & ('1b' | '1c':*)`."""
    parts = []
    for part in tsquery.split(" & "):
        atoms = [Atom(m[1].replace("\\'", "'"), bool(m[2])) for m in _ATOM.finditer(part)]
        parts.append(atoms)
    return parts


@dataclass(frozen=True)
class Costs:
    walk_us: float
    lookup_us: float

    @property
    def walk(self) -> bool:
        return self.walk_us < self.lookup_us


def costs(
    parts: Sequence[Sequence[Atom]], counts: LexemeCounts, limit: int, band: str | None = None
) -> Costs:
    """What walking and looking up would cost, by the counts; `band`: the band's lexeme, which
    a lookup also asks for and a walk stays within."""
    in_band = 1.0 if band is None else counts.share(band)
    rows = counts.rows
    shares = []
    gathered = 0.0
    for i, atoms in enumerate(parts):
        if any(
            _implied(atoms, other) and not (j > i and _implied(other, atoms))
            for j, other in enumerate(parts)
            if j != i
        ):
            # "star s": every title word beginning with "star" begins with "s".
            continue
        share = 0.0
        for atom in atoms:
            if atom.prefix:
                found = counts.prefix_share(atom.lexeme)
                gathered += found
            else:
                found = counts.share(atom.lexeme)
            share += found
        shares.append(min(1.0, share))
    if not shares or rows <= 0:
        return Costs(0.0, 0.0)
    independent = math.prod(shares)
    rarest = min(shares)
    matches = min(rarest, independent * TOGETHER) * in_band * rows
    walked = min(rows * in_band, limit / max(independent, 1.0 / rows))
    walk_us = walked * WALK_US * (WALK_RISK if len(shares) > 1 else 1.0)
    lookup_us = gathered * rows * PREFIX_POSTING_US + rarest * rows * POSTING_US
    lookup_us += matches * MATCH_US
    return Costs(walk_us, lookup_us)


def _implied(part: Sequence[Atom], by: Sequence[Atom]) -> bool:
    return bool(by) and all(any(b.implies(a) for a in part) for b in by)


@dataclass(frozen=True)
class RankedMatch:
    """`SELECT rank_key, <columns> FROM <table> WHERE lexemes @@ <tsquery> AND <conditions
    on rank_key> ORDER BY rank_key LIMIT <limit>`, to be written in one of its two plans."""

    table: str
    columns: tuple[str, ...]
    tsquery: str
    limit: int
    ranges: tuple[tuple[str, int], ...] = ()
    """(operator, bound) conditions on rank_key, such as (">=", 1 << 36)."""
    band: int | None = None
    """In a banded index, the band the ranges lie in: a lookup asks for its lexeme ("~1")."""

    def sql(self, counts: LexemeCounts | None) -> str:
        """The statement with its values written in: the plan the counts choose (the planner's
        own without counts)."""
        sql, _ = self._written(counts, bind=False)
        return sql

    def bound(self, counts: LexemeCounts) -> tuple[str, tuple[object, ...]]:
        """The statement in the plan the counts choose with its values as parameters ($1 the
        tsquery, then the bounds and the limit), and those values.

        Its text is then the same for every search of one shape, so a driver that prepares
        statements (asyncpg) keeps it prepared: one round trip where a new text costs two
        (parse, then execute), about a millisecond of a search box's statements each. The
        plan is fixed by how the statement is written, not by the words, so the generic plan
        PostgreSQL may come to use for it is the same plan. Without counts the planner must
        see the words: use `sql`."""
        return self._written(counts, bind=True)

    def _written(
        self, counts: LexemeCounts | None, *, bind: bool
    ) -> tuple[str, tuple[object, ...]]:
        tsquery, band = self.tsquery, None
        if self.band is not None:
            band = f"~{self.band:d}"
            tsquery = f"{tsquery} & '{band}'"
        walk = costs(parse(self.tsquery), counts, self.limit, band).walk if counts else None
        matched = self.tsquery if walk else tsquery
        values: list[object] = []

        def value(v: str | int) -> str:
            if bind:
                values.append(v)
                return f"${len(values)}" + ("::tsquery" if isinstance(v, str) else "")
            if isinstance(v, str):
                return "'" + v.replace("'", "''") + "'::tsquery"
            return f"{v:d}"

        if walk:
            match, key = f"ts_match_vq(lexemes, {value(matched)})", "rank_key"
        else:
            match = f"lexemes @@ {value(matched)}"
            key = "rank_key" if walk is None else "(rank_key + 0)"
        conditions = [match, *(f"{key} {op} {value(bound)}" for op, bound in self.ranges)]
        sql = (
            f"SELECT rank_key, {', '.join(self.columns)} FROM {self.table}"
            f" WHERE {' AND '.join(conditions)} ORDER BY {key} LIMIT {value(self.limit)}"
        )
        return sql, tuple(values)


COUNTS_SQL = (
    "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs"
    " FROM pg_class c LEFT JOIN pg_stats s"
    " ON s.schemaname = current_schema() AND s.tablename = c.relname AND s.attname = 'lexemes'"
    " WHERE c.relname = :table AND c.relnamespace = current_schema()::regnamespace"
)
"""What `counts_from_row` reads: the table's size and its statistics of ``lexemes``."""


def counts_from_row(row: Sequence[Any] | None) -> LexemeCounts | None:
    """`COUNTS_SQL`'s answer as counts; None when the table was never analysed."""
    if row is None or row[1] is None or row[2] is None:
        return None
    rows, lexemes, shares = float(row[0]), list(row[1]), list(row[2])
    # The shares are followed by their minimum, their maximum and the share of empty values.
    return LexemeCounts.of(rows, dict(zip(lexemes, shares[: len(lexemes)], strict=True)))


@dataclass
class CountsCache:
    """Each table's counts as last read on one connection, and when (time.monotonic())."""

    read: dict[str, tuple[float, LexemeCounts | None]]

    def get(self, table: str) -> tuple[bool, LexemeCounts | None]:
        """(whether the counts are fresh enough to use, the counts)."""
        at, counts = self.read.get(table, (-math.inf, None))
        return time.monotonic() - at < COUNTS_MAX_AGE_S, counts

    def put(self, table: str, counts: LexemeCounts | None) -> None:
        self.read[table] = (time.monotonic(), counts)
