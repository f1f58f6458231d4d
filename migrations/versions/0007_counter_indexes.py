"""Indexes for the rules' counters (a sender's mail in a pair, and in the last hour).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_pair_sender", ["pair_id", "sender_id"], unique=False)
        batch_op.create_index(
            "ix_messages_sender_received", ["sender_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sender_received")
        batch_op.drop_index("ix_messages_pair_sender")
