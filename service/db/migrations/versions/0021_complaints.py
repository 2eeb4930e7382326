"""complaints and test purchases: brands' notices about listings (triaged, decided by the platform) and
orders placed to test them

Adds ``complaints``, ``test_purchases``, ``evidence_photos`` (their photos, kept as evidence),
``platform_policies`` (a platform tenant's fast-track bar and service levels), and ``listings.platform``:
an upheld complaint's or a confirmed test purchase's listing counts in the platform's seller records
though no platform key checked it.

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
        "evidence_photos",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("check_id", sa.String(40)),
    )
    op.create_index("ix_evidence_photos_owner_id", "evidence_photos", ["owner_id"])
    op.create_index("ix_evidence_photos_sha256", "evidence_photos", ["sha256"])
    op.create_table(
        "test_purchases",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("listing", sa.JSON(), nullable=False),
        sa.Column("order_reference", sa.String(200), nullable=False),
        sa.Column("ordered_on", sa.String(10), nullable=False),
        sa.Column("received_on", sa.String(10)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("examiner_note", sa.String(5000), nullable=False),
        sa.Column("listing_ref", sa.String(40)),
        sa.Column("reference_ids", sa.JSON(), nullable=False),
        sa.Column("api_key_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ux_test_purchases_order", "test_purchases", ["platform", "brand", "order_reference"], unique=True
    )
    op.create_index("ix_test_purchases_brand", "test_purchases", ["brand"])
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
    op.drop_index("ix_test_purchases_brand", "test_purchases")
    op.drop_index("ux_test_purchases_order", "test_purchases")
    op.drop_table("test_purchases")
    op.drop_index("ix_evidence_photos_sha256", "evidence_photos")
    op.drop_index("ix_evidence_photos_owner_id", "evidence_photos")
    op.drop_table("evidence_photos")
    op.drop_index("ix_complaints_brand", "complaints")
    op.drop_index("ix_complaints_queue", "complaints")
    op.drop_table("complaints")
    op.drop_index("ix_listings_platform", "listings")
    op.drop_column("listings", "platform")
