"""Two indexes each message row no longer pays for, or pays less for.

ix_messages_sender_received becomes (sender_id, unverified, received_at): the
rate rule counts a sender's verified mail since an hour ago, and with
unverified before received_at that count is one range of the index, with no
column to test on each entry it walks (it walks one entry per message the
sender wrote in the hour: a third less work per entry on SQLite). Nothing
else reads this index (the report and the silence check go through
ix_messages_pair_sender_received).

ix_messages_pair_id goes: every query that looks messages up by pair_id (and
PostgreSQL's check when a pair is deleted) is answered by the indexes that
begin with pair_id (ix_messages_pair_original, _pair_sender, _pair_received,
_pair_sender_received), and every message insert had to add an entry to it.

Revision ID: 0019
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_sender_received", table_name="messages")
    op.create_index(
        "ix_messages_sender_received", "messages", ["sender_id", "unverified", "received_at"]
    )
    op.drop_index("ix_messages_pair_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_pair_id", "messages", ["pair_id"])
    op.drop_index("ix_messages_sender_received", table_name="messages")
    op.create_index(
        "ix_messages_sender_received", "messages", ["sender_id", "received_at", "unverified"]
    )
