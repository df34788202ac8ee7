"""prefix lexemes: each word's first one to four letters are lexemes of their own (PostgreSQL)

Revision ID: 0015
Revises: 0014

PostgreSQL only (SQLite's FTS5 tables keep prefix indexes of their own, 0002 and 0006). The
``lexemes`` of every search index (0009) also hold, for each word of column i, the lexemes
``i>w`` for its first one, two, three and four letters ("0>l", "0>lo", "0>lov", "0>love" for
*love* in the first column). A query word still being typed ("lo") is then one lexeme, looked
up in the GIN index like a whole word, where ``'0lo':*`` gathered the postings of every word
it begins into a bitmap before anything else could happen: 20 ms for ``'0s':*`` at a million
tracks, whatever the other words of the query. A whole-word lexeme with a rare one is answered
by skipping through its postings instead.

``show_search``, filed in bands (a show's status, 0006), also gets its band as the lexeme
``~b`` ("~0" for live shows): looking up the live shows matching a word then fetches only the
live ones, where the band's range of rank_key filtered them out of every band's matches.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (index, its columns, whether it has bands) as in 0009.
_INDEXES = [
    ("track_search", ("title", "artists", "album", "genre"), False),
    ("show_search", ("title", "hashtags", "host", "description"), True),
    ("host_search", ("name", "username"), False),
    ("artist_search", ("name",), False),
    ("hashtag_search", ("tag",), False),
]
# onair.catalog.search.PREFIX_INDEX_MAX
_PREFIX_MAX = 4


def _lexemes(columns: tuple[str, ...], bands: bool, prefixes: bool) -> str:
    # A column's space-separated words, each prefixed with the column's number, and with
    # prefixes its words' first letters prefixed with the number and ">".
    words = [
        rf"string_to_array(regexp_replace({c}, '(\S+)', '{i}\1', 'g'), ' ')"
        for i, c in enumerate(columns)
    ]
    if prefixes:
        words += [
            rf"string_to_array(regexp_replace({c}, '(\S{{1,{n}}})\S*', '{i}>\1', 'g'), ' ')"
            for i, c in enumerate(columns)
            for n in range(1, _PREFIX_MAX + 1)
        ]
        if bands:
            words.append("ARRAY['~' || band::text]")
    return f"array_to_tsvector({' || '.join(words)})"


def _replace_lexemes(prefixes: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns, bands in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS ix_{name}_lexemes")
        lexemes = _lexemes(columns, bands, prefixes)
        op.execute(
            f"ALTER TABLE {name} DROP COLUMN lexemes,"
            f" ADD COLUMN lexemes tsvector GENERATED ALWAYS AS ({lexemes}) STORED"
        )
        # As 0009: the plans are chosen by these counts (onair.catalog.pg_plans).
        op.execute(f"ALTER TABLE {name} ALTER COLUMN lexemes SET STATISTICS 1000")
        op.execute(
            f"CREATE INDEX ix_{name}_lexemes ON {name} USING gin (lexemes) WITH (fastupdate = off)"
        )
        op.execute(f"ANALYZE {name}")


def upgrade() -> None:
    _replace_lexemes(prefixes=True)


def downgrade() -> None:
    _replace_lexemes(prefixes=False)
