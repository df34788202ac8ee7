"""stage: call-in entries and co-hosts

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "listening",
                "requested",
                "screening",
                "on_air",
                "dropped",
                name="stagestate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("topic", sa.String(length=140), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("screener_id", sa.Integer(), nullable=True),
        sa.Column("host_muted", sa.Boolean(), nullable=False),
        sa.Column("self_muted", sa.Boolean(), nullable=False),
        sa.Column("level_db", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["shows.id"],
            name=op.f("fk_stage_entries_show_id_shows"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stage_entries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["screener_id"],
            ["users.id"],
            name=op.f("fk_stage_entries_screener_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_entries")),
        sa.UniqueConstraint("show_id", "user_id", name=op.f("uq_stage_entries_show_id")),
    )
    op.create_index(op.f("ix_stage_entries_show_id"), "stage_entries", ["show_id"])
    op.create_index(op.f("ix_stage_entries_user_id"), "stage_entries", ["user_id"])

    op.create_table(
        "show_cohosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["shows.id"],
            name=op.f("fk_show_cohosts_show_id_shows"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_show_cohosts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_show_cohosts")),
        sa.UniqueConstraint("show_id", "user_id", name=op.f("uq_show_cohosts_show_id")),
    )
    op.create_index(op.f("ix_show_cohosts_show_id"), "show_cohosts", ["show_id"])
    op.create_index(op.f("ix_show_cohosts_user_id"), "show_cohosts", ["user_id"])


def downgrade() -> None:
    op.drop_table("show_cohosts")
    op.drop_table("stage_entries")
