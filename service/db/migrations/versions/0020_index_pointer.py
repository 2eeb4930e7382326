"""index pointer: which index generation is current, in the database (not only a file on one disk)

Replicas with separate local disks follow a reindex or rollback by this row (and fetch the generation's
snapshot from the object store when there is one). Existing deployments get the row from the first
process that starts (its local CURRENT).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_pointer",
        sa.Column("id", sa.Integer(), primary_key=True),  # always 1: one current generation
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("index_pointer")
