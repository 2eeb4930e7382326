"""checked marketplace listings (listing verdicts, seller risk) and their sellers' keyed identifiers

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("listing_id", sa.String(length=200), nullable=True),
        sa.Column("seller_id", sa.String(length=200), nullable=True),
        sa.Column("marketplace", sa.String(length=100), nullable=True),
        sa.Column("brand", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("check_ids", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_listings_seller", "listings", ["marketplace", "seller_id"])
    op.create_index("ix_listings_brand", "listings", ["brand"])
    op.create_index("ix_listings_created_at", "listings", ["created_at"])
    op.create_table(
        "seller_identifiers",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("listing_ref", sa.String(length=40), nullable=False),
        sa.Column("marketplace", sa.String(length=100), nullable=False),
        sa.Column("seller_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["listing_ref"], ["listings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_seller_identifiers_digest", "seller_identifiers", ["key_id", "digest"])
    op.create_index("ix_seller_identifiers_listing_ref", "seller_identifiers", ["listing_ref"])


def downgrade() -> None:
    op.drop_table("seller_identifiers")
    op.drop_table("listings")
