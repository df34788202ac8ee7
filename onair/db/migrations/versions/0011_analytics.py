"""analytics: listener samples, performances and room counts (issue 7)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plays logged before this migration knew only who was there at the start.
    op.add_column(
        "play_log",
        sa.Column("performances", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute("UPDATE play_log SET performances = listeners_at_start")
    op.create_table(
        "listener_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("webrtc", sa.Integer(), nullable=False),
        sa.Column("hls", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Integer(), nullable=False),
        sa.Column("smart_speaker", sa.Integer(), nullable=False),
        sa.Column("reactions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["shows.id"],
            name=op.f("fk_listener_samples_show_id_shows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listener_samples")),
    )
    op.create_index("ix_listener_samples_show_id_at", "listener_samples", ["show_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_listener_samples_show_id_at", table_name="listener_samples")
    op.drop_table("listener_samples")
    with op.batch_alter_table("play_log", schema=None) as batch_op:
        batch_op.drop_column("performances")
