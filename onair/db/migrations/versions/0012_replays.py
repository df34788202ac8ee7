"""replays: show recordings, replays and podcast feeds (issue 7)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("talk", "full", name="replaykind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "processing", "ready", "failed", name="replaystate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.Column("audio_path", sa.Text(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("chapters", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["show_id"], ["shows.id"], name=op.f("fk_replays_show_id_shows"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replays")),
        sa.UniqueConstraint("show_id", "kind", name=op.f("uq_replays_show_id")),
    )
    op.create_index(op.f("ix_replays_show_id"), "replays", ["show_id"])
    op.create_index(op.f("ix_replays_state"), "replays", ["state"])
    op.create_index(op.f("ix_replays_ready_at"), "replays", ["ready_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_replays_ready_at"), table_name="replays")
    op.drop_index(op.f("ix_replays_state"), table_name="replays")
    op.drop_index(op.f("ix_replays_show_id"), table_name="replays")
    op.drop_table("replays")
