"""rate buckets: per-key token buckets shared by every replica (PostgreSQL; SQLite keeps them in the process)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),  # seconds since the epoch, the database's clock
        sa.Column("allowed", sa.Boolean(), nullable=False),  # whether the last take was allowed
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
