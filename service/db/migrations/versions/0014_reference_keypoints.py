"""reference keypoints: each reference's SIFT keypoints (and its mirror image's) for local-feature verification

References registered before this revision have none; `counterfeit backfill-keypoints` computes them
from the stored blobs. Until then their checks simply skip verification against them.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_keypoints",
        sa.Column(
            "reference_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("reference_images.id"),
            primary_key=True,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reference_keypoints")
