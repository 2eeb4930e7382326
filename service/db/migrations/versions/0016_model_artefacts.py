"""model artefacts: a model's centring mean, background and probe vectors, and similarity profile, stored once

Before this revision every process recomputed them at load, and float arithmetic differs between CPU
kinds, thread counts and devices: the same weights got another fingerprint on another host. Nothing to
migrate: the first process of each model writes them (the shipped models' come with the package).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_artefacts",
        sa.Column("key", sa.String(length=120), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_artefacts")
