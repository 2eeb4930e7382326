"""the signed exchange feed: this platform's entries, peers' cursors, peers' keyed seller signals

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feed_entries",
        sa.Column("seq", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("entry_key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_feed_entries_entry_key", "feed_entries", ["entry_key"])
    op.create_table(
        "shared_seller_signals",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("entry_key", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shared_seller_digest", "shared_seller_signals", ["key_id", "digest"])
    op.create_index("ix_shared_seller_signals_entry_key", "shared_seller_signals", ["entry_key"])
    op.create_table(
        "exchange_cursors",
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_entries", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("issuer"),
    )
    with op.batch_alter_table("shared_signals") as batch:
        batch.add_column(sa.Column("entry_key", sa.String(length=200), nullable=True))
        batch.create_index("ix_shared_signals_entry_key", ["entry_key"])


def downgrade() -> None:
    with op.batch_alter_table("shared_signals") as batch:
        batch.drop_index("ix_shared_signals_entry_key")
        batch.drop_column("entry_key")
    op.drop_table("exchange_cursors")
    op.drop_table("shared_seller_signals")
    op.drop_table("feed_entries")
