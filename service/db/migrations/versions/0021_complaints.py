"""complaints: brands' notices about listings, triaged into a fast or a normal lane, decided by the platform

Adds ``complaints`` (with their photos, kept as evidence) and ``platform_policies`` (a platform tenant's
fast-track bar and service levels), and ``listings.platform``: an upheld complaint's listing counts in
the platform's seller records though no platform key checked it.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("listings", sa.Column("platform", sa.String(length=64), nullable=True))
    op.create_index("ix_listings_platform", "listings", ["platform"])
    op.create_table(
        "complaints",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(32), nullable=False),
        sa.Column("statement", sa.String(5000), nullable=False),
        sa.Column("listing", sa.JSON(), nullable=False),
        sa.Column("listing_ref", sa.String(40)),
        sa.Column("photo_check_ids", sa.JSON(), nullable=False),
        sa.Column("reference_ids", sa.JSON(), nullable=False),
        sa.Column("triage", sa.JSON(), nullable=False),
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.JSON()),
        sa.Column("upheld_listing_ref", sa.String(40)),
        sa.Column("upheld_review_ids", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("api_key_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_complaints_queue", "complaints", ["platform", "state", "due_at"])
    op.create_index("ix_complaints_brand", "complaints", ["brand"])
    op.create_table(
        "complaint_photos",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("complaint_id", sa.String(40), sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("check_id", sa.String(40)),
    )
    op.create_index("ix_complaint_photos_complaint_id", "complaint_photos", ["complaint_id"])
    op.create_index("ix_complaint_photos_sha256", "complaint_photos", ["sha256"])
    op.create_table(
        "platform_policies",
        sa.Column("platform", sa.String(64), primary_key=True),
        sa.Column("fast_track_bar", sa.Float(), nullable=False),
        sa.Column("fast_sla_hours", sa.Float(), nullable=False),
        sa.Column("normal_sla_hours", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("platform_policies")
    op.drop_index("ix_complaint_photos_sha256", "complaint_photos")
    op.drop_index("ix_complaint_photos_complaint_id", "complaint_photos")
    op.drop_table("complaint_photos")
    op.drop_index("ix_complaints_brand", "complaints")
    op.drop_index("ix_complaints_queue", "complaints")
    op.drop_table("complaints")
    op.drop_index("ix_listings_platform", "listings")
    op.drop_column("listings", "platform")
