"""Give each database its own key for signing bounce (VERP) addresses.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_secrets = sa.table("relay_secrets", sa.column("name", sa.String), sa.column("value", sa.String))


def upgrade() -> None:
    op.bulk_insert(_secrets, [{"name": "verp", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.execute(_secrets.delete().where(_secrets.c.name == "verp"))
