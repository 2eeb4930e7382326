"""people: analysts' own workbench accounts (argon2id passwords, viewer/reviewer/manager access)

Adds ``people``; a browser session belongs to a key or to a person (``ui_sessions.person_id``,
``api_key_id`` nullable); reviews and audit events name the person who acted.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200)),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("brand", sa.String(64)),
        sa.Column("platform", sa.String(64)),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(40)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_people_brand", "people", ["brand"])
    op.create_index("ix_people_platform", "people", ["platform"])
    with op.batch_alter_table("ui_sessions") as batch:
        batch.alter_column("api_key_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("person_id", sa.String(40), nullable=True))
    op.add_column("reviews", sa.Column("person_id", sa.String(40), nullable=True))
    op.add_column("audit_events", sa.Column("actor_person_id", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_events", "actor_person_id")
    op.drop_column("reviews", "person_id")
    op.execute("DELETE FROM ui_sessions WHERE api_key_id IS NULL")
    with op.batch_alter_table("ui_sessions") as batch:
        batch.drop_column("person_id")
        batch.alter_column("api_key_id", existing_type=sa.String(40), nullable=False)
    op.drop_index("ix_people_platform", "people")
    op.drop_index("ix_people_brand", "people")
    op.drop_table("people")
