"""platform tenants: a platform key belongs to a platform; webhooks are owned by a brand, a platform or the operator

Before this revision every platform key could list, read, delete and re-key every platform's (and the
operator's) webhooks. Existing platform keys and the webhooks they made go to the tenant ``default``;
webhooks made by admin keys stay the operator's (neither brand nor platform).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("platform", sa.String(length=64), nullable=True))
    op.add_column("webhooks", sa.Column("platform", sa.String(length=64), nullable=True))
    op.create_index("ix_webhooks_platform", "webhooks", ["platform"])
    op.execute("UPDATE api_keys SET platform = 'default' WHERE role = 'platform'")
    op.execute(
        "UPDATE webhooks SET platform = 'default' WHERE brand IS NULL AND api_key_id IN "
        "(SELECT id FROM api_keys WHERE role = 'platform')"
    )


def downgrade() -> None:
    op.drop_index("ix_webhooks_platform", "webhooks")
    op.drop_column("webhooks", "platform")
    op.drop_column("api_keys", "platform")
