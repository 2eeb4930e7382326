"""64-bit ids on PostgreSQL (the API takes ids up to 2^63-1; INTEGER stopped at 2^31-1 and answered 500)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = [
    ("reference_images", "id"),
    ("embeddings", "reference_id"),
    ("changes", "seq"),
    ("changes", "reference_id"),
    ("reviews", "id"),
    ("reviews", "added_reference_id"),
    ("shared_signals", "id"),
    ("audit_events", "id"),
]
SERIALS = [
    ("reference_images", "id"),
    ("changes", "seq"),
    ("reviews", "id"),
    ("shared_signals", "id"),
    ("audit_events", "id"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's INTEGER is already 64-bit
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
    for table, column in SERIALS:
        op.execute(f"ALTER SEQUENCE IF EXISTS {table}_{column}_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in SERIALS:
        op.execute(f"ALTER SEQUENCE IF EXISTS {table}_{column}_seq AS integer")
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
