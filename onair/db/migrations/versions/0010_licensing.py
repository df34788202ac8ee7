"""licensing: territories, licence checks and programming rules (issue 7)

A listener's own territory on their account, clean shows, and why a queued song was skipped.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("territory", sa.String(2), nullable=True))
    with op.batch_alter_table("shows") as batch:
        batch.add_column(sa.Column("clean", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("queue_items") as batch:
        batch.add_column(sa.Column("skip_reason", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_items") as batch:
        batch.drop_column("skip_reason")
    with op.batch_alter_table("shows") as batch:
        batch.drop_column("clean")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("territory")
