"""look-alike classifiers of format 1 (a similarity gate) are dropped, so the job refits them

Format 2 adds a membership model (scoring.lookalike_fit) and reads region vectors; a format-1 artefact
cannot be read as one. Deleting the rows makes every brand "stale" (its change log is past what it
was fitted on), and the maintenance lease holder refits them on its next poll. Nothing is lost: the
rows are derived from the stored embeddings.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM lookalike_probes")


def downgrade() -> None:
    op.execute("DELETE FROM lookalike_probes")  # format-2 artefacts are not readable by the older code either
