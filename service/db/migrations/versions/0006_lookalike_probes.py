"""brands' look-alike classifiers (one per brand and model fingerprint)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lookalike_probes",
        sa.Column("brand", sa.String(length=64), nullable=False),
        sa.Column("model_fingerprint", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("trained_through_seq", sa.BigInteger(), nullable=False),
        sa.Column("artefact", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("brand", "model_fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("lookalike_probes")
