"""review cases: a brand's analysts group the checks of one listing or one seller, with a status workflow
(new → reviewing → action taken → closed), an assignee and notes

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("marketplace", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.String(40)),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ux_review_cases_subject",
        "review_cases",
        ["brand", "subject_kind", "marketplace", "subject"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_review_cases_subject", "review_cases")
    op.drop_table("review_cases")
