"""browse: listeners now, genre match of what shows play, trending hashtags

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shows") as batch:
        batch.add_column(
            sa.Column("listeners_now", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("listeners_peak", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("played_seconds", sa.Float(), server_default="0", nullable=False)
        )
    op.create_index("ix_shows_status_listeners_now", "shows", ["status", "listeners_now"])
    op.create_table(
        "show_genre_seconds",
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["shows.id"],
            name=op.f("fk_show_genre_seconds_show_id_shows"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["genre_id"], ["genres.id"], name=op.f("fk_show_genre_seconds_genre_id_genres")
        ),
        sa.PrimaryKeyConstraint("show_id", "genre_id", name=op.f("pk_show_genre_seconds")),
    )
    op.create_index(op.f("ix_show_genre_seconds_genre_id"), "show_genre_seconds", ["genre_id"])
    op.create_index(
        "ix_play_log_started_listening",
        "play_log",
        ["started_at", "show_id", "listener_seconds"],
    )
    # Shows that ended before this migration played what the play log says; credit it once,
    # so their genre match is there from the start.
    op.execute(
        """
        UPDATE shows SET played_seconds = COALESCE(
            (SELECT SUM(p.seconds_played) FROM play_log p WHERE p.show_id = shows.id), 0)
        """
    )
    op.execute(
        """
        INSERT INTO show_genre_seconds (show_id, genre_id, seconds)
        SELECT p.show_id, tg.genre_id, SUM(p.seconds_played)
        FROM play_log p JOIN track_genres tg ON tg.track_id = p.track_id
        GROUP BY p.show_id, tg.genre_id
        """
    )


def downgrade() -> None:
    op.drop_index("ix_play_log_started_listening", table_name="play_log")
    op.drop_table("show_genre_seconds")
    op.drop_index("ix_shows_status_listeners_now", table_name="shows")
    with op.batch_alter_table("shows") as batch:
        batch.drop_column("played_seconds")
        batch.drop_column("listeners_peak")
        batch.drop_column("listeners_now")
