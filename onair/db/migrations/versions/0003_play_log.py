"""play log

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "play_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("queue_item_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds_played", sa.Float(), nullable=False),
        sa.Column("listeners_at_start", sa.Integer(), nullable=False),
        sa.Column("listener_seconds", sa.Float(), nullable=False),
        sa.Column("peak_listeners", sa.Integer(), nullable=False),
        sa.Column("auto_dj", sa.Boolean(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["show_id"], ["shows.id"], name=op.f("fk_play_log_show_id_shows")),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], name=op.f("fk_play_log_track_id_tracks")
        ),
        sa.ForeignKeyConstraint(
            ["queue_item_id"],
            ["queue_items.id"],
            name=op.f("fk_play_log_queue_item_id_queue_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_play_log")),
    )
    op.create_index(op.f("ix_play_log_show_id"), "play_log", ["show_id"])
    op.create_index(op.f("ix_play_log_track_id"), "play_log", ["track_id"])
    op.create_index(op.f("ix_play_log_started_at"), "play_log", ["started_at"])


def downgrade() -> None:
    op.drop_table("play_log")
