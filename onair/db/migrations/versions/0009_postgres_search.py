"""postgres search: the search indexes get lexemes and a ranking key, as FTS5 has on SQLite

Revision ID: 0009
Revises: 0008

PostgreSQL only (nothing changes on SQLite). Each search index (0002, 0006) gets two generated
columns, so every write path fills them and the rows already there are filled here:

- ``lexemes``: a tsvector of the engine's own folded words, each prefixed with its column's
  number ("0love" is *love* in the first column), built with array_to_tsvector, never with a
  text search parser. A GIN index on it answers a column-filtered word (``'0love'``) or prefix
  (``'0lo':*``) exactly, as FTS5's column filters do, and the planner's statistics count each
  word per column.
- ``rank_key``: FTS5's rowid, ``band << 36 | min(title words, 15) << 32 | id``, with a unique
  b-tree, so "the best 20 matches" can walk it in ranking order and stop after 20.

The LIKE documents and their trigram indexes, which nothing reads any more, are dropped.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (index, its key column, its columns (the first one's word count ranks), whether it has bands)
_INDEXES = [
    ("track_search", "track_id", ("title", "artists", "album", "genre"), False),
    ("show_search", "id", ("title", "hashtags", "host", "description"), True),
    ("host_search", "id", ("name", "username"), False),
    ("artist_search", "id", ("name",), False),
    ("hashtag_search", "id", ("tag",), False),
]


def _lexemes(columns: tuple[str, ...]) -> str:
    # A column's space-separated words, each prefixed with the column's number ('' has none).
    words = [
        rf"string_to_array(regexp_replace({c}, '(\S+)', '{i}\1', 'g'), ' ')"
        for i, c in enumerate(columns)
    ]
    return f"array_to_tsvector({' || '.join(words)})"


def _rank_key(key: str, first: str, bands: bool) -> str:
    # onair.catalog.search: BAND_SHIFT 36, TRACK_ID_BITS 32, MAX_TITLE_WORDS 15.
    # Parenthesised: PostgreSQL gives << and | the same precedence, left to right.
    band = "(band::bigint << 36) | " if bands else ""
    words = f"(least(cardinality(string_to_array({first}, ' ')), 15)::bigint << 32)"
    return f"{band}{words} | {key}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, key, columns, bands in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS ix_{name}_document_trgm")
        op.execute(
            f"ALTER TABLE {name} DROP COLUMN document,"
            f" ADD COLUMN lexemes tsvector GENERATED ALWAYS AS ({_lexemes(columns)}) STORED,"
            f" ADD COLUMN rank_key bigint GENERATED ALWAYS AS"
            f" ({_rank_key(key, columns[0], bands)}) STORED"
        )
        # The planner's choice between walking rank_key and looking words up in the GIN index
        # is only as good as its count of each word: the default 100 keeps the 1,000 most
        # common words of a million documents and guesses every other one far too common.
        # 10,000 words cost under a millisecond of planning; 100,000 cost five.
        op.execute(f"ALTER TABLE {name} ALTER COLUMN lexemes SET STATISTICS 1000")
        # fastupdate off: each write goes into the index itself, not into a list of pending
        # entries (up to 4 MB) that every query would read first. A bulk fill turns it on for
        # its duration (onair.catalog.search.fill_index).
        op.execute(
            f"CREATE INDEX ix_{name}_lexemes ON {name} USING gin (lexemes) WITH (fastupdate = off)"
        )
        op.execute(f"CREATE UNIQUE INDEX ix_{name}_rank_key ON {name} (rank_key)")
        op.execute(f"ANALYZE {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _key, columns, _bands in _INDEXES:
        document = f"' ' || concat_ws(' | ', {', '.join(columns)}) || ' '"
        op.execute(
            f"ALTER TABLE {name} DROP COLUMN lexemes, DROP COLUMN rank_key,"
            " ADD COLUMN document TEXT NOT NULL DEFAULT ''"
        )
        op.execute(f"UPDATE {name} SET document = {document}")
        op.execute(f"ALTER TABLE {name} ALTER COLUMN document DROP DEFAULT")
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                    CREATE INDEX ix_{name}_document_trgm
                        ON {name} USING gin (document gin_trgm_ops);
                END IF;
            END
            $$
            """
        )
