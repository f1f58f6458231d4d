"""Moderation: watched participants and pairs, decisions, the audit trail, notice kinds.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relay.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("moderator", sa.String(length=200), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "approve",
                "reject",
                "discard",
                name="moderation_verdict",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("redacted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_moderation_actions_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_actions")),
    )
    with op.batch_alter_table("moderation_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moderation_actions_message_id"), ["message_id"], unique=False
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decided_at", relay.store.models.UtcDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice", sa.String(length=32), nullable=True))

    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("watched", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("watched", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("watched")

    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_column("watched")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("notice")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("decided_at")

    with op.batch_alter_table("moderation_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_actions_message_id"))

    op.drop_table("moderation_actions")
