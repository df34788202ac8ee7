"""source ingest: per-show source keys (issue 8)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # reserved: filled in by the ingest work


def downgrade() -> None:
    pass
