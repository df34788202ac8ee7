"""Catalog search: accent- and case-folded, prefix-as-you-type, one typo per word.

On SQLite the documents live in the FTS5 table ``track_search`` (columns title, artists, album,
genre). On PostgreSQL the same folded documents live in a plain ``track_search`` table whose
generated columns (migration 0009) stand for FTS5's index: ``lexemes``, a tsvector of the words
each prefixed with its column's number (``0love``: *love* in the title), with a GIN index, and
``rank_key``, the FTS5 rowid described below, with a b-tree. Every FTS5 query below is asked
there as the same tsquery ordered by rank_key (`_pg_rows`), so both databases give the same
answers in the same order.

Typos are found the same way everywhere: ``search_terms`` holds every indexed word and
``search_term_variants`` every word's single-character deletions ("SymSpell"), so the real words
within one edit of a query word are an indexed lookup away; each is then checked with the
Damerau-Levenshtein (optimal string alignment) distance.

A query runs in tiers, each only filling the places the ones before it left: every word as typed
(as a prefix), then with the words that match nothing widened to their typo neighbours, then with
every word widened. So exact matches always rank above typo matches, and a query without typos
costs one lookup.

Within a tier, a track scores, for each query word, the weight of the best column it is found in
(`WEIGHTS`), doubled when the word being typed matches a whole word ("love" before "lovely");
ties go to the shorter title, then to the older track. bm25 would rank similarly, but it reads
every match's column sizes: 0.1 s for one common word at 70,000 tracks, seconds at a million. So
the FTS5 rowid is laid out for ranking instead: ``title_words << 32 | track_id``. FTS5 returns
matches in rowid order, shortest titles first, so "the best 20 tracks whose title holds *the*"
is a ``LIMIT 20`` that stops after 20 rows. A query with few matches is scored whole in Python; a
broad one is answered by asking, best first, for each way its words can fall into columns
(`_Placement`), until the tracks found can no longer be beaten. The vocabulary remembers the
columns each word has been seen in, so no placement that nothing could fit is asked for.

The same engine serves every other thing found by typing (discovery's shows, hosts, hashtags
and the catalog's artists): a `SearchIndex` names its tables, columns and weights, and may file
its documents in `bands` (a show's status), each band a rowid range that FTS5 seeks to, so
"the best live shows" is one query rather than a filter over every show.

On PostgreSQL each word's first one to four letters are lexemes of their own (migration 0015),
so a word still being typed is one GIN entry, as FTS5's prefix indexes make it one b-tree. A
query's plan is chosen from the words' counts (`pg_plans`): walk rank_key, filtering with the
tsquery and stopping after the LIMIT, when the words are common; look them up in the GIN index
and sort the matches when they are rare. Where the matches lie in the ranking order no count
says: a walk reads every document ranked before the first matches, so a placement of several
title words starts at titles long enough to hold them (`_Placement.title_words`).
"""

from __future__ import annotations

import heapq
import itertools
import re
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog import pg_plans
from onair.catalog.models import Track
from onair.catalog.text import fold

COLUMNS = ("title", "artists", "album", "genre")
# A word found in the title counts most, then in the artists, the album, the genre.
WEIGHTS = {"title": 10, "artists": 6, "album": 3, "genre": 1}
# A vocabulary mask meaning "every column": what a word not looked up may be in.
EVERY_COLUMN = 0xFFFF
# Words shorter than this are not corrected: one edit of a three-letter word is another word.
TYPO_MIN_LENGTH = 4
# Words longer than this get no deletion variants: they are rare, and the table would balloon.
VARIANT_MAX_LENGTH = 24
# Prefixes up to this long have an FTS5 prefix index (migration 0002) and lexemes of their own
# on PostgreSQL (0015); longer ones are expanded to the indexed words they begin when there are
# at most MAX_COMPLETIONS.
PREFIX_INDEX_MAX = 4
MAX_COMPLETIONS = 64
# A short word can have dozens of neighbours; beyond this many the OR stops helping anyone.
MAX_NEIGHBOURS = 24
MAX_QUERY_WORDS = 8
# A query matching fewer tracks than this is scored whole; more, and placements take over.
SCORE_ALL_BELOW = 100
# Placements asked at most (8 words could make 8**8), and how many matches of a group of
# placements are worth reading in one go.
MAX_PLACEMENTS = 128
GROUP_LIMIT = 100
# FTS5 rowid layout: the title's word count (capped) above the track id. Migration 0002's
# delete trigger lists the rowids a track can have, so it knows MAX_TITLE_WORDS too.
TRACK_ID_BITS = 32
TRACK_ID_MASK = (1 << TRACK_ID_BITS) - 1
MAX_TITLE_WORDS = 15
# Above the title's word count (4 bits), the document's band; tracks have only band 0.
BAND_SHIFT = TRACK_ID_BITS + 4

_CHUNK = 500
_TOKEN = re.compile(r"[^\W_]+")
# Letters NFKD leaves alone but people type without their stroke or ligature.
_EXTRA_FOLDS = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}
)


def search_fold(value: str) -> str:
    if value.isascii():
        return value.lower()
    return fold(value).translate(_EXTRA_FOLDS)


def tokens(value: str) -> list[str]:
    """The words of `value` as the index stores them; matches FTS5's unicode61 splitting."""
    return _TOKEN.findall(search_fold(value))


def deletion_variants(term: str) -> set[str]:
    return {term[:i] + term[i + 1 :] for i in range(len(term))}


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein (optimal string alignment) distance of `a` and `b` is at most 1."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    if len(a) > len(b):
        return a[i + 1 :] == b[i:]
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


def _term_variants(term: str) -> set[str]:
    """The variant rows stored for `term`: itself and, if it is long enough, its deletions."""
    if len(term) < TYPO_MIN_LENGTH - 1 or len(term) > VARIANT_MAX_LENGTH or not term.isalpha():
        return set()
    if len(term) < TYPO_MIN_LENGTH:
        return {term}
    return {term} | deletion_variants(term)


@dataclass(frozen=True)
class SearchIndex:
    """One searchable kind of thing: its FTS5 (SQLite) or plain (PostgreSQL, with lexemes and
    rank_key, migration 0009) table, whose first column is the one whose length breaks ties, and
    its own vocabulary of words and variants."""

    table: str
    columns: tuple[str, ...]
    weights: Mapping[str, int]
    terms: str
    variants: str
    # PostgreSQL's key column (SQLite keys the FTS5 rowid).
    key: str = "id"
    # Documents are filed in this many bands; one band is searched at a time.
    bands: int = 1

    def bit(self, column: str) -> int:
        return 1 << self.columns.index(column)

    @property
    def all_columns(self) -> int:
        return (1 << len(self.columns)) - 1

    def rowid(self, doc_id: int, title_words: int, band: int = 0) -> int:
        if not 0 < doc_id <= TRACK_ID_MASK:
            raise ValueError(f"id {doc_id} does not fit the {self.table} index")
        if not 0 <= band < self.bands:
            raise ValueError(f"band {band} is not one of {self.table}'s {self.bands}")
        return band << BAND_SHIFT | min(title_words, MAX_TITLE_WORDS) << TRACK_ID_BITS | doc_id

    def rowids(self, doc_id: int) -> list[int]:
        """Every rowid `doc_id` could be filed under: what to delete without reading first."""
        return [
            self.rowid(doc_id, n, band)
            for band in range(self.bands)
            for n in range(MAX_TITLE_WORDS + 1)
        ]

    def band_range(self, band: int) -> tuple[int, int]:
        return band << BAND_SHIFT, (band + 1) << BAND_SHIFT


TRACKS = SearchIndex(
    "track_search", COLUMNS, WEIGHTS, "search_terms", "search_term_variants", key="track_id"
)
# The catalog's artists by name (migration 0006), so a search lists the artist, not only
# their songs.
ARTISTS = SearchIndex(
    "artist_search", ("name",), {"name": 10}, "artist_search_terms", "artist_search_term_variants"
)


@dataclass(frozen=True)
class Document:
    """One thing's folded words per column of its index, space-separated, in a band."""

    doc_id: int
    values: tuple[str, ...]
    band: int = 0

    def terms(self) -> dict[str, int]:
        """Each word and the columns it is in, as a bit mask (column i is bit i)."""
        found: dict[str, int] = {}
        for i, value in enumerate(self.values):
            for term in value.split():
                found[term] = found.get(term, 0) | 1 << i
        return found

    def rowid(self, index: SearchIndex) -> int:
        return index.rowid(self.doc_id, len(self.values[0].split()), self.band)


def document(doc_id: int, *values: str | Iterable[str], band: int = 0) -> Document:
    """A document from raw text: each value (or list of values) folded into its words."""
    return Document(
        doc_id,
        tuple(" ".join(tokens(v if isinstance(v, str) else " ".join(v))) for v in values),
        band,
    )


@dataclass(frozen=True)
class SearchDocument(Document):
    """One track's folded words per column (title, artists, album, genre)."""

    @property
    def track_id(self) -> int:
        return self.doc_id

    @property
    def title(self) -> str:
        return self.values[0]

    @property
    def fts_rowid(self) -> int:
        return self.rowid(TRACKS)


def column_bit(column: str) -> int:
    return TRACKS.bit(column)


ALL_COLUMNS = TRACKS.all_columns


def _merge_terms(into: dict[str, int], terms: dict[str, int]) -> None:
    for term, columns in terms.items():
        into[term] = into.get(term, 0) | columns


def fts_rowid(track_id: int, title_words: int) -> int:
    return TRACKS.rowid(track_id, title_words)


def fts_rowids(track_id: int) -> list[int]:
    """Every rowid `track_id` could be filed under: what to delete without reading first."""
    return TRACKS.rowids(track_id)


def make_document(
    track_id: int, title: str, artists: Iterable[str], album: str | None, genres: Iterable[str]
) -> SearchDocument:
    d = document(track_id, title, artists, album or "", genres)
    return SearchDocument(d.doc_id, d.values)


def document_for(track: Track) -> SearchDocument:
    return make_document(
        track.id,
        track.title,
        track.artists,
        track.album.title if track.album else None,
        track.genres,
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_sqlite(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def in_list(prefix: str, values: Sequence[object]) -> tuple[str, dict[str, object]]:
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


# --- writing ----------------------------------------------------------------------------------


async def index_tracks(db: AsyncSession, tracks: Sequence[Track]) -> None:
    """Make `tracks` (already flushed, with artists, album and genres loaded) findable.

    A track already in the index has its entry replaced.
    """
    if tracks:
        await write_documents(db, [document_for(t) for t in tracks], replace=True)


async def index_artists(db: AsyncSession, artists: Iterable[tuple[int, str]]) -> None:
    """Make artists, given as (id, name), findable by name; an indexed one is replaced."""
    documents = [document(artist_id, name) for artist_id, name in artists]
    await write_documents(db, documents, index=ARTISTS)


async def search_artist_ids(db: AsyncSession, query: str, *, limit: int = 5) -> list[int]:
    """Artist ids whose name matches every word of `query`, best first."""
    return await search_ids(db, ARTISTS, query, limit=limit)


async def write_documents(
    db: AsyncSession,
    documents: Sequence[Document],
    *,
    replace: bool = True,
    index: SearchIndex = TRACKS,
) -> None:
    """Store `documents` and their words; `replace=False` skips deleting what cannot be there."""
    if not documents:
        return
    if replace:
        await remove_documents(db, index, [d.doc_id for d in documents])
    await _store_documents(db, index, documents, is_sqlite(db))
    terms: dict[str, int] = {}
    for d in documents:
        _merge_terms(terms, d.terms())
    await _add_terms(db, index, terms)


async def _add_terms(
    db: AsyncSession, index: SearchIndex, terms: dict[str, int], *, known: bool = True
) -> None:
    """Adds the new words among `terms` to the vocabulary, with their deletion variants, and
    notes new columns of known ones. `known=False`: the vocabulary is empty, skip looking."""
    new: list[str] = []
    grown: list[dict[str, object]] = []
    for chunk in _chunks(sorted(terms)):
        if not known:
            new.extend(chunk)
            continue
        placeholders, params = in_list("t", chunk)
        sql = f"SELECT term, columns FROM {index.terms} WHERE term IN ({placeholders})"
        found: dict[str, int] = {t: c for t, c in await db.execute(text(sql), params)}
        for term in chunk:
            if term not in found:
                new.append(term)
            elif terms[term] & ~found[term]:
                grown.append({"term": term, "columns": terms[term] | found[term]})
    if grown:
        sql = f"UPDATE {index.terms} SET columns = :columns WHERE term = :term"
        await db.execute(text(sql), grown)
    ignore = _insert_ignoring_duplicates(db)
    for chunk in _chunks(new, 5000):
        await db.execute(
            text(ignore(f"{index.terms} (term, columns) VALUES (:term, :columns)")),
            [{"term": t, "columns": terms[t]} for t in chunk],
        )
        variants = [{"variant": v, "term": t} for t in chunk for v in _term_variants(t)]
        if variants:
            await db.execute(
                text(ignore(f"{index.variants} (variant, term) VALUES (:variant, :term)")),
                variants,
            )


def _insert_ignoring_duplicates(db: AsyncSession) -> Callable[[str], str]:
    if is_sqlite(db):
        return lambda rest: f"INSERT OR IGNORE INTO {rest}"
    return lambda rest: f"INSERT INTO {rest} ON CONFLICT DO NOTHING"


async def remove_tracks(db: AsyncSession, track_ids: Iterable[int]) -> None:
    """Drop tracks from the index (their words stay in the vocabulary until a rebuild)."""
    await remove_documents(db, TRACKS, track_ids)


async def remove_documents(db: AsyncSession, index: SearchIndex, doc_ids: Iterable[int]) -> None:
    """Drop documents from `index` (their words stay in the vocabulary until a rebuild)."""
    ids = list(doc_ids)
    if not ids:
        return
    if not is_sqlite(db):
        await db.execute(
            text(f"DELETE FROM {index.table} WHERE {index.key} = :id"), [{"id": i} for i in ids]
        )
        return
    rowids = [r for i in ids for r in index.rowids(i)]
    for chunk in _chunks(rowids):
        placeholders, params = in_list("r", chunk)
        await db.execute(text(f"DELETE FROM {index.table} WHERE rowid IN ({placeholders})"), params)


async def clear_index(db: AsyncSession, index: SearchIndex) -> None:
    """Empty `index` and its vocabulary, to be filled again with `fill_index`."""
    for table in (index.table, index.variants, index.terms):
        await db.execute(text(f"DELETE FROM {table}"))


async def fill_index(
    db: AsyncSession, index: SearchIndex, batches: AsyncIterator[Sequence[Document]]
) -> int:
    """Index every document of `batches` into an emptied `index` (see `clear_index`), the
    vocabulary written once at the end; returns how many. The caller commits."""
    sqlite = is_sqlite(db)
    # PostgreSQL: the GIN index (migration 0009) takes every write at once, as a query must
    # otherwise read a list of pending entries (up to 4 MB) first; a bulk fill is far faster
    # with that list, which is merged into the index at the end.
    gin = f"ix_{index.table}_lexemes"
    if not sqlite:
        await db.execute(text(f"ALTER INDEX {gin} SET (fastupdate = on)"))
    terms: dict[str, int] = {}
    done = 0
    async for documents in batches:
        await _store_documents(db, index, documents, sqlite)
        for d in documents:
            _merge_terms(terms, d.terms())
        done += len(documents)
    await _add_terms(db, index, terms, known=False)
    if sqlite:
        # One b-tree instead of hundreds of incremental segments: far fewer pages per query.
        await db.execute(text(f"INSERT INTO {index.table} ({index.table}) VALUES ('optimize')"))
    else:
        await db.execute(text(f"ALTER INDEX {gin} SET (fastupdate = off)"))
        await db.execute(text(f"SELECT gin_clean_pending_list('{gin}'::regclass)"))
        # The planner chooses each query's plan by its count of each word (migration 0009);
        # autovacuum would count the new documents only later.
        for table in (index.table, index.terms, index.variants):
            await db.execute(text(f"ANALYZE {table}"))
    return done


async def rebuild_index(
    db: AsyncSession,
    *,
    batch: int = 5000,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Index every track from scratch (after a bulk load, or to drop stale words); returns the
    number of tracks indexed. The caller commits."""
    await clear_index(db, TRACKS)
    total = int(await db.scalar(text("SELECT count(*) FROM tracks")) or 0)

    async def batches() -> AsyncIterator[Sequence[Document]]:
        done = 0
        last_id = 0
        while documents := await _load_documents(db, last_id, batch):
            yield documents
            last_id = documents[-1].doc_id
            done += len(documents)
            if on_progress:
                on_progress(done, total)

    indexed = await fill_index(db, TRACKS, batches())
    await rebuild_artists(db, batch=batch)
    return indexed


async def rebuild_artists(db: AsyncSession, *, batch: int = 5000) -> int:
    """Index every artist from scratch; the caller commits."""
    await clear_index(db, ARTISTS)

    async def batches() -> AsyncIterator[Sequence[Document]]:
        last_id = 0
        while True:
            sql = "SELECT id, name FROM artists WHERE id > :after ORDER BY id LIMIT :n"
            rows = (await db.execute(text(sql), {"after": last_id, "n": batch})).all()
            if not rows:
                return
            yield [document(artist_id, name) for artist_id, name in rows]
            last_id = rows[-1][0]

    return await fill_index(db, ARTISTS, batches())


async def _store_documents(
    db: AsyncSession, index: SearchIndex, documents: Sequence[Document], sqlite: bool
) -> None:
    if not documents:
        return  # an executemany of no rows is an error (nothing to bind)
    names = ", ".join(index.columns)
    values = ", ".join(f":c{i}" for i in range(len(index.columns)))
    rows: list[dict[str, object]] = []
    for d in documents:
        row: dict[str, object] = {f"c{i}": v for i, v in enumerate(d.values)}
        row["id"] = d.rowid(index) if sqlite else d.doc_id
        if not sqlite:
            row["band"] = d.band
        rows.append(row)
    if sqlite:
        sql = f"INSERT INTO {index.table} (rowid, {names}) VALUES (:id, {values})"
    else:
        # lexemes and rank_key are generated columns (migration 0009).
        band = (", band", ", :band") if index.bands > 1 else ("", "")
        sql = (
            f"INSERT INTO {index.table} ({index.key}, {names}{band[0]})"
            f" VALUES (:id, {values}{band[1]})"
        )
    await db.execute(text(sql), rows)


async def _load_documents(db: AsyncSession, after_id: int, batch: int) -> list[Document]:
    rows = (
        await db.execute(
            text(
                "SELECT t.id, t.title, al.title FROM tracks t"
                " LEFT JOIN albums al ON al.id = t.album_id"
                " WHERE t.id > :after ORDER BY t.id LIMIT :n"
            ),
            {"after": after_id, "n": batch},
        )
    ).all()
    if not rows:
        return []
    bounds = {"lo": rows[0][0], "hi": rows[-1][0]}
    artists: dict[int, list[str]] = {}
    for track_id, name in await db.execute(
        text(
            "SELECT ta.track_id, a.name FROM track_artists ta JOIN artists a ON a.id = ta.artist_id"
            " WHERE ta.track_id BETWEEN :lo AND :hi ORDER BY ta.track_id, ta.position"
        ),
        bounds,
    ):
        artists.setdefault(track_id, []).append(name)
    genres: dict[int, list[str]] = {}
    for track_id, name in await db.execute(
        text(
            "SELECT tg.track_id, g.name FROM track_genres tg JOIN genres g ON g.id = tg.genre_id"
            " WHERE tg.track_id BETWEEN :lo AND :hi"
        ),
        bounds,
    ):
        genres.setdefault(track_id, []).append(name)
    return [
        make_document(tid, title, artists.get(tid, ()), album, genres.get(tid, ()))
        for tid, title, album in rows
    ]


# --- searching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """One way a query word can match a token: as a whole word (or one of its corrections), or
    as the beginning of a longer one, worth `factor` times the column's weight."""

    factor: int
    whole: frozenset[str]
    prefix: str | None
    # The indexed words beginning with `prefix`, when there are few: FTS5 merges the postings
    # of every such word before it can answer `"night" *`, 6 ms for a common word at a million
    # tracks; an OR of the words themselves is answered lazily.
    completions: tuple[str, ...] | None = None
    # The columns (`SearchIndex.bit`) any of those words has ever been seen in.
    columns: int = EVERY_COLUMN

    def fts(self) -> str:
        words = sorted(self.whole)
        phrases = []
        if self.prefix is not None:
            if self.completions is None:
                phrases.append(f'"{self.prefix}" *')
            else:
                words = sorted(self.whole.union(self.completions))
        phrases += [f'"{t}"' for t in words]
        if not phrases:
            # Nothing begins with the prefix: a phrase that matches nothing keeps the query valid.
            phrases = [f'"{self.prefix}"']
        return phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"

    def overlaps(self, other: _Kind) -> bool:
        """Some word could match both kinds."""

        def begins(kind: _Kind, word: str) -> bool:
            return kind.prefix is not None and word.startswith(kind.prefix)

        if self.whole & other.whole:
            return True
        if any(begins(self, w) for w in other.whole) or any(begins(other, w) for w in self.whole):
            return True
        return (
            self.prefix is not None
            and other.prefix is not None
            and (self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix))
        )

    def tsquery(self, columns: Sequence[int]) -> str:
        """`fts` as a tsquery over the `lexemes` of `columns` (migration 0009)."""
        # A prefix is one GIN lookup whatever the words it begins; the planner counts a list
        # of completions as that many words' worth of matches.
        lexemes = [_lexeme(c, t) for c in columns for t in sorted(self.whole)]
        if self.prefix is not None:
            lexemes += [_prefix_lexeme(c, self.prefix) for c in columns]
        if not lexemes:
            return _NO_LEXEME
        return lexemes[0] if len(lexemes) == 1 else "(" + " | ".join(lexemes) + ")"


@dataclass(frozen=True)
class _Vocabulary:
    """What the vocabulary knows of a query word or its corrections."""

    # Indexed words beginning with the query word (None: too many to list, or not looked up).
    completions: tuple[str, ...] | None = None
    # Columns the word itself, its completions and its corrections have been seen in.
    whole_columns: int = EVERY_COLUMN
    prefix_columns: int = EVERY_COLUMN
    neighbour_columns: int = 0


@dataclass(frozen=True)
class _Word:
    """One query word: itself (a prefix unless a lone letter mid-query), maybe its typo
    neighbours, and whether it is the last word, the one still being typed."""

    text: str
    prefix: bool
    last: bool
    vocabulary: _Vocabulary = _Vocabulary()
    neighbours: tuple[str, ...] = ()

    def kinds(self) -> list[_Kind]:
        v = self.vocabulary
        whole = frozenset((self.text, *self.neighbours))
        corrected = v.neighbour_columns if self.neighbours else 0
        if self.last:
            # The word being typed: a whole-word match means the user has finished typing it.
            return [
                _Kind(2, whole, None, columns=v.whole_columns | corrected),
                _Kind(1, frozenset(), self.text, v.completions, v.prefix_columns),
            ]
        if self.prefix:
            columns = v.prefix_columns | corrected
            return [_Kind(1, whole - {self.text}, self.text, v.completions, columns)]
        return [_Kind(1, whole, None, columns=v.whole_columns | corrected)]

    def fts(self) -> str:
        """Matches the word anywhere, however it may match."""
        if self.prefix:
            v = self.vocabulary
            return _Kind(1, frozenset(self.neighbours), self.text, v.completions).fts()
        return _Kind(1, frozenset((self.text, *self.neighbours)), None).fts()

    @property
    def known(self) -> bool:
        """Some indexed word is this word or (if it is a prefix) begins with it."""
        return bool(
            self.vocabulary.prefix_columns if self.prefix else self.vocabulary.whole_columns
        )

    def widened(self, neighbours: tuple[str, ...], columns: int) -> _Word:
        vocabulary = replace(self.vocabulary, neighbour_columns=columns)
        return replace(self, vocabulary=vocabulary, neighbours=neighbours)


@dataclass(frozen=True)
class _Placement:
    """Which column and kind of match each word is asked for; one FTS5 query, one score."""

    score: int
    parts: tuple[tuple[str, _Kind], ...]

    def fts(self) -> str:
        return " AND ".join(f"{column} : {kind.fts()}" for column, kind in self.parts)

    def tsquery(self, index: SearchIndex) -> str:
        return " & ".join(kind.tsquery((index.columns.index(c),)) for c, kind in self.parts)

    def title_words(self, index: SearchIndex) -> int:
        """The fewest words a title (the first column) matching this placement can have: the
        most kinds asked of it that no one word could match together."""
        kinds = list({kind for column, kind in self.parts if column == index.columns[0]})
        most = 0
        for size in range(len(kinds), 0, -1):
            for subset in itertools.combinations(kinds, size):
                if not any(a.overlaps(b) for a, b in itertools.combinations(subset, 2)):
                    return size
        return most


def _options(word: _Word, index: SearchIndex) -> list[tuple[int, str, _Kind]]:
    options = [
        (index.weights[c] * k.factor, c, k)
        for c in index.columns
        for k in word.kinds()
        if k.columns & index.bit(c)
    ]
    return sorted(options, key=lambda o: -o[0])


def _placements(words: Sequence[_Word], search_index: SearchIndex) -> Iterator[_Placement]:
    """Every placement of the words in columns, best score first (a lazy walk of the product)."""
    options = [_options(w, search_index) for w in words]

    def placement(index: tuple[int, ...]) -> _Placement:
        chosen = [options[w][i] for w, i in enumerate(index)]
        return _Placement(sum(o[0] for o in chosen), tuple((o[1], o[2]) for o in chosen))

    start = (0,) * len(words)
    heap = [(-placement(start).score, start)]
    seen = {start}
    while heap:
        _, index = heapq.heappop(heap)
        yield placement(index)
        for w in range(len(words)):
            if index[w] + 1 < len(options[w]):
                after = (*index[:w], index[w] + 1, *index[w + 1 :])
                if after not in seen:
                    seen.add(after)
                    heapq.heappush(heap, (-placement(after).score, after))


class _Scorer:
    """What the ranking gives a document (its columns' folded text) for the words: for each
    word, the value of the best (column, kind) it matches. Matching is a regular expression per
    kind, so scoring a few hundred candidates stays well under a millisecond."""

    def __init__(self, words: Sequence[_Word], index: SearchIndex) -> None:
        self._words: list[list[tuple[int, int, re.Pattern[str]]]] = []
        for word in words:
            options = []
            for kind in word.kinds():
                alternatives = [re.escape(t) + "(?: |$)" for t in sorted(kind.whole)]
                if kind.prefix is not None:
                    alternatives.append(re.escape(kind.prefix))
                if not alternatives:
                    continue
                pattern = re.compile("(?:^| )(?:" + "|".join(alternatives) + ")")
                for i, column in enumerate(index.columns):
                    options.append((index.weights[column] * kind.factor, i, pattern))
            options.sort(key=lambda o: -o[0])
            self._words.append(options)

    def __call__(self, columns: Sequence[str]) -> int:
        total = 0
        for options in self._words:
            for value, column, pattern in options:
                if pattern.search(columns[column]):
                    total += value
                    break
        return total


def _match_anywhere(words: Sequence[_Word]) -> str:
    return " AND ".join(w.fts() for w in words)


# PostgreSQL: a word in column i of an index is the lexeme `i` + word (migration 0009), so a
# column filter is a lexeme and no lexeme begins with this.
_NO_LEXEME = "'-'"


def _lexeme(column: int, word: str) -> str:
    """A quoted tsquery lexeme (escaped, though the engine's words are letters and digits)."""
    escaped = word.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{column:d}{escaped}'"


def _prefix_lexeme(column: int, prefix: str) -> str:
    """Words of `column` beginning with `prefix`: up to PREFIX_INDEX_MAX letters, the lexeme
    migration 0015 stores for them (`'0>lo'`); longer, a tsquery prefix (`'0lovel':*`)."""
    if len(prefix) <= PREFIX_INDEX_MAX:
        return _lexeme(column, ">" + prefix)
    return _lexeme(column, prefix) + ":*"


def _tsquery_anywhere(words: Sequence[_Word], index: SearchIndex) -> str:
    """`_match_anywhere` as a tsquery: each word in any column the vocabulary has seen it in
    (a column it was never seen in cannot hold it)."""
    parts = []
    for word in words:
        seen = 0
        for kind in word.kinds():
            seen |= kind.columns
        columns = [i for i in range(len(index.columns)) if seen & 1 << i]
        if word.prefix:
            v = word.vocabulary
            kind = _Kind(1, frozenset(word.neighbours), word.text, v.completions)
        else:
            kind = _Kind(1, frozenset((word.text, *word.neighbours)), None)
        parts.append(kind.tsquery(columns))
    return " & ".join(parts)


def _pg_rows(at: _Band, query: str, limit: int, title_words: int = 0) -> Statement:
    """`_fts_rows` on PostgreSQL: the tsquery's first `limit` matches in rank_key order, by
    walking rank_key or by looking the words up in the GIN index, whichever the words' counts
    say is cheaper (`pg_plans`; the runner reads the counts). The plan is chosen here, not by
    the planner, so the runner may bind the tsquery (`RankedMatch.bound`): a prepared
    statement's generic plan, blind to whether the words are common or rare, is then the
    same plan."""
    index = at.index
    ranges: list[tuple[str, int]] = []
    band = None
    if index.bands > 1:
        lo, hi = index.band_range(at.band)
        ranges += [(">=", lo), ("<", hi)]
        band = at.band
    if title_words > 1:
        # Titles are ranked shortest first: a walk need not read the ones too short to match
        # (a placement of two words in the title would otherwise read every one-word title).
        fewest = at.band << BAND_SHIFT | min(title_words, MAX_TITLE_WORDS) << TRACK_ID_BITS
        ranges.append((">=", fewest))
    ranked = pg_plans.RankedMatch(index.table, index.columns, query, limit, tuple(ranges), band)
    return Statement(ranked.sql(None), ranked=ranked)


async def search_track_ids(
    db: AsyncSession, query: str, *, limit: int = 20, offset: int = 0
) -> list[int]:
    """Track ids matching every word of `query`, best first."""
    return await search_ids(db, TRACKS, query, limit=limit, offset=offset)


# --- running: the search below is written as steps, each a statement whose rows it is sent ----


@dataclass(frozen=True)
class Statement:
    """One statement a search asks for. Without `params` the SQL is literal text (PostgreSQL's
    tsqueries hold colons, which are not placeholders)."""

    sql: str
    params: Mapping[str, object] | None = None
    ranked: pg_plans.RankedMatch | None = None
    """PostgreSQL: a ranked match, written by the runner in the plan its words' counts choose
    (`sql` is the planner's choice, for a runner without counts)."""


_T = TypeVar("_T")
Steps: TypeAlias = Generator[Statement, Sequence[Any], _T]


async def run_steps(db: AsyncSession, searches: Sequence[Steps[_T]]) -> list[_T]:
    """The answers of `searches`, run on `db`'s connection one after the other.

    On SQLite every statement of every search runs in aiosqlite's thread in one go: going
    there and back costs more than most of the statements (three hops of about 50 us each
    per statement through SQLAlchemy), and a search box asks for some thirty."""
    await db.flush()  # what `db.execute` would do first: the session's pending writes count
    if is_sqlite(db):
        connection = await db.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        in_thread = getattr(raw, "_execute", None)
        sqlite = getattr(raw, "_conn", None)
        if in_thread is not None and isinstance(sqlite, sqlite3.Connection):
            answers: list[_T] = await in_thread(_run_in_thread, sqlite, searches)
            return answers
    return [await _run_async(db, steps) for steps in searches]


async def run_one(db: AsyncSession, steps: Steps[_T]) -> _T:
    """The answer of one search run as `run_steps` runs several."""
    [answer] = await run_steps(db, [steps])
    return answer


def _run_in_thread(connection: sqlite3.Connection, searches: Sequence[Steps[_T]]) -> list[_T]:
    answers = []
    for steps in searches:
        try:
            statement = next(steps)
            while True:
                rows = connection.execute(statement.sql, statement.params or {}).fetchall()
                statement = steps.send(rows)
        except StopIteration as done:
            answers.append(done.value)
    return answers


async def _run_async(db: AsyncSession, steps: Steps[_T]) -> _T:
    fetch = await _asyncpg_fetch(db)
    try:
        statement = next(steps)
        while True:
            rows: Sequence[Any]
            if fetch is None:
                rows = await _execute(db, statement)
            elif statement.ranked is not None:
                counts = await _lexeme_counts(db, statement.ranked.table)
                if counts is None:
                    rows = await fetch(statement.ranked.sql(None))
                else:
                    sql, args = statement.ranked.bound(counts)
                    rows = await fetch(sql, *args)
            elif statement.params is None:
                rows = await fetch(statement.sql)
            else:
                sql, values = _numbered(statement.sql, statement.params)
                rows = await fetch(sql, *values)
            statement = steps.send(rows)
    except StopIteration as done:
        value: _T = done.value
        return value


_Fetch: TypeAlias = Callable[..., Awaitable[Sequence[Any]]]


async def _asyncpg_fetch(db: AsyncSession) -> _Fetch | None:
    """asyncpg's own `fetch` on `db`'s connection (and transaction), when that is the driver.

    A search box asks for some thirty statements, and SQLAlchemy's path around each (its
    execution context, result and the greenlet hops of its asyncio adaptation) costs more
    than many of them take: the box's median went from 22.7 to 20.5 ms on the bench world
    when only the ranked matches went to asyncpg directly."""
    connection = await db.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    fetch = getattr(raw, "fetch", None)
    if fetch is not None and type(raw).__module__.startswith("asyncpg"):
        found: _Fetch = fetch
        return found
    return None


async def _execute(db: AsyncSession, statement: Statement) -> Sequence[Any]:
    """`statement` through SQLAlchemy, for a driver other than asyncpg and aiosqlite."""
    if statement.ranked is not None:
        counts = await _lexeme_counts(db, statement.ranked.table)
        return (await db.execute(text(statement.ranked.sql(counts).replace(":", "\\:")))).all()
    if statement.params is None:
        return (await db.execute(text(statement.sql.replace(":", "\\:")))).all()
    return (await db.execute(text(statement.sql), dict(statement.params))).all()


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _numbered(sql: str, params: Mapping[str, object]) -> tuple[str, list[object]]:
    """`sql`'s :name placeholders as asyncpg's $1, $2... and their values in that order (a
    name used twice is one parameter). The engine's statements with parameters hold no
    literal text, so every such colon is a placeholder; `::` casts are not."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match[1]
        if name not in params:
            raise KeyError(f"no value for :{name}")
        return f"${order.setdefault(name, len(order) + 1)}"

    numbered = _NAMED.sub(number, sql)
    return numbered, [params[name] for name in order]


async def _lexeme_counts(db: AsyncSession, table: str) -> pg_plans.LexemeCounts | None:
    """`table`'s lexeme counts, kept with the database connection for a few minutes."""
    info = (await db.connection()).info
    cache = info.setdefault("onair.lexeme_counts", pg_plans.CountsCache({}))
    assert isinstance(cache, pg_plans.CountsCache)
    fresh, counts = cache.get(table)
    if not fresh:
        row = (await db.execute(text(pg_plans.COUNTS_SQL), {"table": table})).first()
        counts = pg_plans.counts_from_row(row)
        cache.put(table, counts)
    return counts


async def search_ids(
    db: AsyncSession,
    index: SearchIndex,
    query: str,
    *,
    limit: int = 20,
    offset: int = 0,
    band: int | None = None,
    fill: int | None = None,
) -> list[int]:
    """Ids of the documents of `index` (of one band, when it has several) matching every word
    of `query`, best first. Typo corrections fill the places left while fewer than `fill`
    (default: all of them) matched as typed."""
    return await run_one(db, ids_steps(index, query, is_sqlite(db), limit, offset, band, fill))


def ids_steps(
    index: SearchIndex,
    query: str,
    sqlite: bool,
    limit: int = 20,
    offset: int = 0,
    band: int | None = None,
    fill: int | None = None,
) -> Steps[list[int]]:
    """`search_ids` as steps for `run_steps`."""
    if band is None and index.bands > 1:
        raise ValueError(f"{index.table} is searched one band at a time")
    found = yield from bands_steps(index, query, sqlite, [band or 0], limit, offset, fill)
    return found[band or 0]


async def search_bands(
    db: AsyncSession,
    index: SearchIndex,
    query: str,
    bands: Sequence[int],
    *,
    limit: int = 20,
    offset: int = 0,
    fill: int | None = None,
) -> dict[int, list[int]]:
    """`search_ids` for each of `bands`, the words looked up (and corrected) once for all.

    With `fill`, typos are corrected only when the bands together found fewer than `fill`
    as typed: a box that lists a few of each kind of thing needs no guesses once it has
    exact matches, and each guess costs queries."""
    return await run_one(db, bands_steps(index, query, is_sqlite(db), bands, limit, offset, fill))


def bands_steps(
    index: SearchIndex,
    query: str,
    sqlite: bool,
    bands: Sequence[int],
    limit: int = 20,
    offset: int = 0,
    fill: int | None = None,
) -> Steps[dict[int, list[int]]]:
    """`search_bands` as steps for `run_steps`."""
    out: dict[int, list[int]] = {band: [] for band in bands}
    typed = tokens(query)[:MAX_QUERY_WORDS]
    if not typed or limit <= 0:
        return out
    last = len(typed) - 1
    # Every word matches as a prefix, so "dan sug" finds "Dance of the Sugar Plum Fairy"; a lone
    # letter only at the end, where it is the word being typed.
    words = [_Word(w, prefix=len(w) > 1 or i == last, last=i == last) for i, w in enumerate(typed)]
    for i, w in enumerate(words):
        words[i] = replace(w, vocabulary=(yield from _look_up(index, w, sqlite)))
    wanted = offset + limit
    if all(w.known for w in words):
        found = yield from _run_tier_bands(index, bands, words, wanted, sqlite)
    else:
        found = {band: [] for band in bands}
    correct = fill is None or sum(len(f) for f in found.values()) < fill
    short = [band for band in bands if len(found[band]) < wanted]
    if correct and short:
        for tier in (yield from _typo_tiers(index, words)):
            more = yield from _run_tier_bands(index, short, tier, 2 * wanted, sqlite)
            for band in short:
                seen = set(found[band])
                found[band].extend(i for i in more[band] if i not in seen)
            short = [band for band in short if len(found[band]) < wanted]
            if not short:
                break
    return {band: found[band][offset:wanted] for band in bands}


def _run_tier_bands(
    index: SearchIndex, bands: Sequence[int], words: list[_Word], wanted: int, sqlite: bool
) -> Steps[dict[int, list[int]]]:
    """A tier's best `wanted` in each band: a query per band, each seeking its range of the
    ranking order (FTS5's rowid, PostgreSQL's rank_key)."""
    found = {}
    for band in bands:
        found[band] = yield from _run_tier(_Band(index, band), words, wanted, sqlite)
    return found


@dataclass(frozen=True)
class _Band:
    """Where a query looks: one band of one index."""

    index: SearchIndex
    band: int

    def fts_range(self) -> tuple[str, dict[str, object]]:
        if self.index.bands == 1:
            return "", {}
        lo, hi = self.index.band_range(self.band)
        return " AND rowid >= :lo AND rowid < :hi", {"lo": lo, "hi": hi}


def _typo_tiers(index: SearchIndex, words: list[_Word]) -> Steps[list[list[_Word]]]:
    """The queries widened for typos: the words that match nothing first, then every word."""
    found = {}
    for w in words:
        if len(w.text) >= TYPO_MIN_LENGTH and w.text not in found:
            found[w.text] = yield from _neighbours(index, w.text)
    if not any(neighbours for neighbours, _ in found.values()):
        return []

    def widened(word: _Word) -> _Word:
        return word.widened(*found[word.text]) if word.text in found else word

    unknown = {w.text for w in words if w.text in found and not w.known}
    tiers: list[list[_Word]] = []
    if any(found[t][0] for t in unknown):
        tiers.append([widened(w) if w.text in unknown else w for w in words])
    if any(found[t][0] for t in found if t not in unknown):
        tiers.append([widened(w) for w in words])
    return tiers


def _look_up(index: SearchIndex, word: _Word, sqlite: bool) -> Steps[_Vocabulary]:
    """The columns `word` has been seen in and, for a prefix, the indexed words it begins
    when they are few. Prefixes of up to PREFIX_INDEX_MAX letters have their own FTS5 index."""
    if not word.prefix or len(word.text) <= 2:
        # One or two letters begin too many words to list or to read the columns of.
        sql = f"SELECT columns FROM {index.terms} WHERE term = :w"
        found = yield Statement(sql, {"w": word.text})
        return _Vocabulary(whole_columns=found[0][0] if found else 0)
    # A byte-order range is what the primary key (SQLite) or the text_pattern_ops index
    # (PostgreSQL) can seek; GLOB or LIKE with an expression for a pattern scans every word.
    start, stop = word.text, word.text[:-1] + chr(ord(word.text[-1]) + 1)
    where = "term >= :start AND term < :stop" if sqlite else "term ~>=~ :start AND term ~<~ :stop"
    # A prefix with its own FTS5 index needs no list, only the columns of its words: read
    # them if there are a few hundred at most, else take every column.
    many = MAX_COMPLETIONS if len(word.text) > PREFIX_INDEX_MAX else 4 * MAX_COMPLETIONS
    sql = f"SELECT term, columns FROM {index.terms} WHERE {where} ORDER BY term LIMIT :n"
    params = {"start": start, "stop": stop, "n": many + 1}
    rows: list[tuple[str, int]] = [(t, c) for t, c in (yield Statement(sql, params))]
    whole = next((c for t, c in rows if t == word.text), 0)
    if len(rows) > many:
        return _Vocabulary(whole_columns=whole)
    prefix_columns = 0
    for _, columns in rows:
        prefix_columns |= columns
    completions = tuple(t for t, _ in rows) if len(word.text) > PREFIX_INDEX_MAX else None
    return _Vocabulary(completions, whole_columns=whole, prefix_columns=prefix_columns)


def _neighbours(index: SearchIndex, word: str) -> Steps[tuple[tuple[str, ...], int]]:
    """The indexed words within one edit of `word` (other than `word` itself) and the columns
    they have been seen in."""
    variants = sorted({word} | deletion_variants(word))
    placeholders, params = in_list("v", variants)
    sql = (
        f"SELECT DISTINCT t.term, t.columns FROM {index.variants} v"
        f" JOIN {index.terms} t ON t.term = v.term WHERE v.variant IN ({placeholders})"
    )
    rows = yield Statement(sql, params)
    close = [(t, c) for t, c in rows if t != word and within_one_edit(word, t)]
    # Same-length corrections (a slip of a finger) before dropped or doubled letters.
    close.sort(key=lambda tc: (abs(len(tc[0]) - len(word)), tc[0]))
    columns = 0
    for _, c in close[:MAX_NEIGHBOURS]:
        columns |= c
    return tuple(t for t, _ in close[:MAX_NEIGHBOURS]), columns


def _run_tier(at: _Band, words: list[_Word], wanted: int, sqlite: bool) -> Steps[list[int]]:
    """The tier's best `wanted`: FTS5 MATCH queries on SQLite, the same queries as tsqueries
    over `lexemes` on PostgreSQL (`_tsquery_anywhere`, `_Placement.tsquery`)."""
    match = _match_anywhere(words) if sqlite else _tsquery_anywhere(words, at.index)
    rows = yield _fts_rows(at, match, SCORE_ALL_BELOW, sqlite)
    score = _Scorer(words, at.index)
    scores = {row[0]: score(row[1:]) for row in rows}
    if len(rows) >= SCORE_ALL_BELOW:
        # Too many to score them all; the first ones stay in as candidates.
        yield from _best_placements(at, words, wanted, score, scores, sqlite)
    best = sorted(scores, key=lambda rowid: (-scores[rowid], rowid))
    return [rowid & TRACK_ID_MASK for rowid in best[:wanted]]


def _fts_rows(at: _Band, match: str, limit: int, sqlite: bool, title_words: int = 0) -> Statement:
    """The first `limit` matches of `match` (an FTS5 expression, or a tsquery on PostgreSQL)
    in ranking order: their rowid (rank_key) and columns. `title_words`: none has fewer."""
    if not sqlite:
        return _pg_rows(at, match, limit, title_words)
    table = at.index.table
    band, params = at.fts_range()
    sql = (
        f"SELECT rowid, {', '.join(at.index.columns)} FROM {table}"
        f" WHERE {table} MATCH :q{band} LIMIT :n"
    )
    return Statement(sql, {"q": match, "n": limit, **params})


def _best_placements(
    at: _Band,
    words: list[_Word],
    wanted: int,
    score: _Scorer,
    scores: dict[int, int],
    sqlite: bool,
) -> Steps[None]:
    """Adds to `scores` enough tracks to hold the best `wanted`, asking placements best first.

    A placement's query returns its first `wanted` matches in rowid order (shortest titles
    first), which is the ranking order among tracks scoring at least that placement's score.
    So once `wanted` tracks score above every placement not yet asked, none can beat them.

    A placement nothing fits still costs a scan of the common word's postings (1.5 ms for
    "to" * at a million tracks). So after the first, placements are asked by the group that
    shares the last word's column and kind, with the other words anywhere: when the group's
    matches are few, one scan returns them all and settles every placement in it.
    """
    placements = list(itertools.islice(_placements(words, at.index), MAX_PLACEMENTS))
    done: set[int] = set()
    open_groups: set[tuple[str, _Kind]] = set()
    for i, placement in enumerate(placements):
        if i in done:
            continue
        group = placement.parts[-1]
        if i > 0 and len(words) > 1 and group not in open_groups:
            last_column, last_kind = group
            if sqlite:
                anywhere = [w.fts() for w in words[:-1]]
                match = " AND ".join([*anywhere, f"{last_column} : {last_kind.fts()}"])
            else:
                last = _Placement(0, ((last_column, last_kind),)).tsquery(at.index)
                match = " & ".join([_tsquery_anywhere(words[:-1], at.index), last])
            rows = yield _fts_rows(at, match, GROUP_LIMIT, sqlite)
            for rowid, *columns in rows:
                scores[rowid] = max(scores.get(rowid, 0), score(columns))
            if len(rows) < GROUP_LIMIT:
                done.update(j for j, p in enumerate(placements) if p.parts[-1] == group)
            else:
                open_groups.add(group)
        if i not in done:
            match = placement.fts() if sqlite else placement.tsquery(at.index)
            fewest = 0 if sqlite else placement.title_words(at.index)
            for rowid, *columns in (yield _fts_rows(at, match, wanted, sqlite, fewest)):
                found = max(placement.score, score(columns))
                scores[rowid] = max(scores.get(rowid, 0), found)
            done.add(i)
        bound = next((p.score for j, p in enumerate(placements) if j not in done), -1)
        if sum(s > bound for s in scores.values()) >= wanted:
            return
