"""look-alike classifiers are refitted with a gate that also clears other products (format 3)

A format-2 membership gate is a percentile of the brand's own held-out references only; format 3
raises it, where the brand's products and other products overlap, to what only 1 in 200 held-out
other products reaches (scoring.lookalike_fit). The artefact reads the same, so old rows would keep
their lower gate until the brand's banks change: deleting them makes every brand stale, and the
maintenance lease holder refits them on its next poll. Nothing is lost: the rows are derived from the
stored embeddings.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM lookalike_probes")


def downgrade() -> None:
    pass  # format-3 artefacts read as format 2: the older code keeps them
