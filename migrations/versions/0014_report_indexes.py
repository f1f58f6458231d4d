"""Indexes for `relay report`: a pair's messages in time order, and held or decided mail.

ix_messages_pair_received (pair_id, received_at, sender_id) lets the reply-time
window pass read each pair's messages in order from the index alone, and
answers "did anyone write between these two times" for prompts;
ix_messages_pair_sender_received (pair_id, sender_id, received_at) gives
each side's first, last and number of messages, and the focus list's "when
did each side last write", from the index alone; the status and decided_at
indexes find held, decided and rejected messages without reading the rest.
The rules' counters keep their own covering indexes (migration 0010).

Revision ID: 0014
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_pair_received", ["pair_id", "received_at", "sender_id"], unique=False
        )
        batch_op.create_index(
            "ix_messages_pair_sender_received",
            ["pair_id", "sender_id", "received_at"],
            unique=False,
        )
        batch_op.create_index("ix_messages_status", ["status"], unique=False)
        batch_op.create_index("ix_messages_decided_at", ["decided_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_decided_at")
        batch_op.drop_index("ix_messages_status")
        batch_op.drop_index("ix_messages_pair_sender_received")
        batch_op.drop_index("ix_messages_pair_received")
