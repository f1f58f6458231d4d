"""Security: set_aside, outbox.bounced_at (one DSN a row), daemon_health (status heartbeat).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relay.store.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "set_aside",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_set_aside_pair_id_pairs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_set_aside")),
    )
    with op.batch_alter_table("set_aside", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_set_aside_pair_id"), ["pair_id"], unique=False)
    op.create_table(
        "daemon_health",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("beat_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_daemon_health")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bounced_at", relay.store.models.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    op.drop_table("daemon_health")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("bounced_at")
    with op.batch_alter_table("set_aside", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_set_aside_pair_id"))
    op.drop_table("set_aside")
