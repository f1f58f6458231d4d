"""An index for `relay report` and the focus list: every pair's sent prompts, from the index alone.

ix_scheduled_items_sent (kind, status, pair_id, item_key, done_at) holds
what "prompts answered" and "the last two prompts" read: the sent prompts
of each pair, item by item, with the time each went out. Without it, each
of the (pair, item, participant) rows was fetched from the table through
the unique key.

Revision ID: 0016
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduled_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_items_sent",
            ["kind", "status", "pair_id", "item_key", "done_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_items", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_items_sent")
