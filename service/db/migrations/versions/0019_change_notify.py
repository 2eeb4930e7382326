"""change notifications: on PostgreSQL every committed change-log row NOTIFYs the replicas (service.core.change_notify)

Replicas learnt of changes only by polling the log (the poll interval was the propagation delay). The
trigger's notification is delivered when the writing transaction commits, whoever wrote it (a replica,
the bulk-import CLI, a reindex); polling stays as the fallback, and is SQLite's only path.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION counterfeit_notify_changes() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('counterfeit_changes', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute(
        "CREATE TRIGGER changes_notify AFTER INSERT ON changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION counterfeit_notify_changes()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS changes_notify ON changes")
    op.execute("DROP FUNCTION IF EXISTS counterfeit_notify_changes()")
