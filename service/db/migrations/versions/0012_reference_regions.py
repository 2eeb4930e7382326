"""reference regions: each embedding row may carry the vectors of its reference's regions

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
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("regions", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("region_preset", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("embeddings") as batch:
        batch.drop_column("region_preset")
        batch.drop_column("regions")
