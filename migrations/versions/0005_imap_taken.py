"""IMAP source: imap_taken, the messages already taken from a mailbox (UIDVALIDITY + UID).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relay.store.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_taken",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("reply", sa.String(length=200), nullable=False),
        sa.Column("message_ids", sa.String(length=200), nullable=False),
        sa.Column("taken_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_taken")),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name=op.f("uq_imap_taken_mailbox")),
    )


def downgrade() -> None:
    op.drop_table("imap_taken")
