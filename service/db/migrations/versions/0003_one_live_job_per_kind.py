"""one live job per kind, cluster-wide

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:00:54.776980
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Before the index can exist, at most one live job per kind: the newest stays, older ones fail.
    op.execute(
        "UPDATE jobs SET state = 'failed', error = 'superseded by a newer live job of its kind (migration 0003)' "
        "WHERE state IN ('queued', 'running') AND created_at < (SELECT MAX(newer.created_at) FROM jobs newer "
        "WHERE newer.kind = jobs.kind AND newer.state IN ('queued', 'running'))"
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "uq_one_live_job_per_kind",
            ["kind"],
            unique=True,
            sqlite_where=sa.text("state IN ('queued', 'running')"),
            postgresql_where=sa.text("state IN ('queued', 'running')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_one_live_job_per_kind",
            sqlite_where=sa.text("state IN ('queued', 'running')"),
            postgresql_where=sa.text("state IN ('queued', 'running')"),
        )
