"""discovery search: shows, hosts and hashtags searchable, setlists and now playing looked up

Revision ID: 0006
Revises: 0005

Four more indexes for `onair.catalog.search`'s engine, each with its own vocabulary, built as
0002 built the tracks' one: shows (title, hashtags, host, description; filed by status so live
shows are sought first), hosts (display name, username), hashtags and the catalog's artists.
Hashtags have no table of their own, so `hashtag_search_tags` gives each an id to be indexed
by. Rows that existed before this revision are indexed by
`onair.shows.discovery.index.backfill_if_empty` (run by `onair db upgrade` and `onair serve`).

And two play-log indexes for "who is playing this now": the open rows (a song on air) by
track, and every play by track and time (recently played, setlists).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (index, columns, table whose rows it indexes, rowids per row for the delete trigger)
_INDEXES = [
    ("show_search", ("title", "hashtags", "host", "description"), "shows", 3),
    ("host_search", ("name", "username"), "users", 1),
    ("artist_search", ("name",), "artists", 1),
    ("hashtag_search", ("tag",), "hashtag_search_tags", 1),
]


def _rowids(bands: int) -> str:
    # The FTS5 rowid is `band << 36 | title words << 32 | id` (onair.catalog.search).
    return ", ".join(f"old.id + {b << 36 | n << 32}" for b in range(bands) for n in range(16))


def _sqlite() -> list[str]:
    out = [
        "CREATE TABLE hashtag_search_tags ("
        " id INTEGER NOT NULL PRIMARY KEY, tag VARCHAR(64) NOT NULL UNIQUE)",
    ]
    for name, columns, source, bands in _INDEXES:
        out += [
            # As track_search (0002): column filters without positions, no bm25 sizes, prefix
            # indexes for 1-4 letters.
            f"CREATE VIRTUAL TABLE {name} USING fts5({', '.join(columns)},"
            " tokenize = 'unicode61 remove_diacritics 2',"
            " prefix = '1 2 3 4', detail = column, columnsize = 0)",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {source} BEGIN"
            f" DELETE FROM {name} WHERE rowid IN ({_rowids(bands)}); END",
        ]
        out += _vocabulary(name, " WITHOUT ROWID")
    return out


def _vocabulary(name: str, suffix: str = "") -> list[str]:
    return [
        f"CREATE TABLE {name}_terms ("
        f" term TEXT NOT NULL PRIMARY KEY, columns INTEGER NOT NULL DEFAULT 15){suffix}",
        f"CREATE TABLE {name}_term_variants ("
        f" variant TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (variant, term)){suffix}",
    ]


def _postgresql() -> list[str]:
    out = [
        "CREATE TABLE hashtag_search_tags ("
        " id SERIAL NOT NULL PRIMARY KEY, tag VARCHAR(64) NOT NULL UNIQUE)",
    ]
    for name, columns, source, bands in _INDEXES:
        band = ", band INTEGER NOT NULL DEFAULT 0" if bands > 1 else ""
        out += [
            f"CREATE TABLE {name} ("
            f" id INTEGER NOT NULL PRIMARY KEY REFERENCES {source} (id) ON DELETE CASCADE,"
            + "".join(f" {c} TEXT NOT NULL," for c in columns)
            + f" document TEXT NOT NULL{band})",
            *_vocabulary(name),
            f"CREATE INDEX ix_{name}_terms_term_pattern ON {name}_terms (term text_pattern_ops)",
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                    CREATE INDEX ix_{name}_document_trgm
                        ON {name} USING gin (document gin_trgm_ops);
                END IF;
            END
            $$
            """,
        ]
    return out


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _sqlite() if dialect == "sqlite" else _postgresql():
        op.execute(statement)
    # Declared on the model by onair.shows.discovery.models.
    op.create_index(
        "ix_play_log_on_air",
        "play_log",
        ["track_id", "started_at", "show_id"],
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "ix_play_log_track_started",
        "play_log",
        ["track_id", "started_at", "show_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_play_log_track_started", "play_log")
    op.drop_index("ix_play_log_on_air", "play_log")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, _columns, _source, _bands in reversed(_INDEXES):
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {name}_delete")
        for table in (f"{name}_term_variants", f"{name}_terms", name):
            op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP TABLE IF EXISTS hashtag_search_tags")
