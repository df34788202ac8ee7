"""catalog search: full-text index and typo vocabulary

Revision ID: 0002
Revises: 0001

On SQLite the index is an FTS5 table keyed by track id; elsewhere (PostgreSQL) a plain table of
the same folded text, with a trigram index when pg_trgm can be installed. Both share the word
vocabulary and its single-deletion variants, which is how a misspelled word finds its neighbours.
Tracks that existed before this revision are indexed by `onair.catalog.search.rebuild_index`.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# The FTS5 rowid is `title words << 32 | track id` (see onair.catalog.search), so a track's
# entry is one of these rowids.
_TRACK_ROWIDS = ", ".join(f"old.id + {n << 32}" for n in range(16))

_SQLITE = [
    # detail=column: column filters work, positions (for phrases, which search never asks for)
    # are not stored. columnsize=0: search does not use bm25, which alone needs column sizes.
    # Prefix indexes of 1-4 letters: without one, FTS5 merges the postings of every word a prefix
    # begins before answering (8 ms for "love" * at a million tracks); search lists the words
    # of longer prefixes instead.
    "CREATE VIRTUAL TABLE track_search USING fts5("
    " title, artists, album, genre, tokenize = 'unicode61 remove_diacritics 2',"
    " prefix = '1 2 3 4', detail = column, columnsize = 0)",
    # FTS5 tables know nothing of foreign keys; this keeps deleted tracks out of the results.
    "CREATE TRIGGER tracks_search_delete AFTER DELETE ON tracks BEGIN"
    f" DELETE FROM track_search WHERE rowid IN ({_TRACK_ROWIDS}); END",
    # columns: a bit per track_search column (title 1, artists 2, album 4, genre 8) the word
    # has been seen in, so search never asks for it where it has never been.
    "CREATE TABLE search_terms ("
    " term TEXT NOT NULL PRIMARY KEY, columns INTEGER NOT NULL DEFAULT 15) WITHOUT ROWID",
    "CREATE TABLE search_term_variants ("
    " variant TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (variant, term)) WITHOUT ROWID",
]

_PORTABLE = [
    "CREATE TABLE track_search ("
    " track_id INTEGER NOT NULL PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,"
    " title TEXT NOT NULL, artists TEXT NOT NULL, album TEXT NOT NULL, genre TEXT NOT NULL,"
    " document TEXT NOT NULL)",
    "CREATE TABLE search_terms ("
    " term TEXT NOT NULL PRIMARY KEY, columns INTEGER NOT NULL DEFAULT 15)",
    "CREATE TABLE search_term_variants ("
    " variant TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (variant, term))",
]

_POSTGRESQL = [
    # The primary key's index follows the database collation; prefix LIKE needs byte order.
    "CREATE INDEX ix_search_terms_term_pattern ON search_terms (term text_pattern_ops)",
    # pg_trgm is a trusted extension, but a locked-down server may still refuse it; search then
    # works without the index, only slower.
    """
    DO $$
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm unavailable (%), catalog search runs without a trigram index',
            SQLERRM;
    END
    $$
    """,
    """
    DO $$
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
            CREATE INDEX ix_track_search_document_trgm
                ON track_search USING gin (document gin_trgm_ops);
        END IF;
    END
    $$
    """,
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    statements = _SQLITE if dialect == "sqlite" else _PORTABLE
    if dialect == "postgresql":
        statements = statements + _POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS tracks_search_delete")
    op.execute("DROP TABLE IF EXISTS search_term_variants")
    op.execute("DROP TABLE IF EXISTS search_terms")
    op.execute("DROP TABLE IF EXISTS track_search")
