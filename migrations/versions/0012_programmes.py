"""Programmes: cohorts, scheduled items, check-ins, nudges; pair endings; reminders opt-out.

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def _kind(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("weeks", sa.Integer(), nullable=False),
        sa.Column("curriculum", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint("name", name=op.f("uq_cohorts_name")),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminders_off", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("ended_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("cohort_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("started_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("weeks", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("next_item_at", UTC_DATETIME, nullable=True))
        batch_op.create_index(batch_op.f("ix_pairs_cohort_id"), ["cohort_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairs_next_item_at"), ["next_item_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_pairs_cohort_id_cohorts"), "cohorts", ["cohort_id"], ["id"]
        )
    op.create_table(
        "scheduled_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("week", sa.Integer(), nullable=False),
        sa.Column(
            "kind", _kind("item_kind", "prompt", "checkin", "closing", "completed"), nullable=False
        ),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("status", _kind("send_status", "sent", "skipped"), nullable=False),
        sa.Column("done_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_scheduled_items_pair_id_pairs")
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_scheduled_items_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_items")),
        sa.UniqueConstraint(
            "pair_id", "item_key", "participant_id", name=op.f("uq_scheduled_items_pair_id")
        ),
    )
    op.create_table(
        "checkins",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("week", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=False),
        sa.Column("answered_at", UTC_DATETIME, nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_checkins_pair_id_pairs")),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_checkins_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index(op.f("ix_checkins_pair_id"), "checkins", ["pair_id"], unique=False)
    op.create_table(
        "nudges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("silence_since", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_nudges_pair_id_pairs")),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_nudges_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudges")),
        sa.UniqueConstraint(
            "pair_id", "participant_id", "silence_since", name=op.f("uq_nudges_pair_id")
        ),
    )
    op.create_index(op.f("ix_nudges_participant_id"), "nudges", ["participant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_nudges_participant_id"), table_name="nudges")
    op.drop_table("nudges")
    op.drop_index(op.f("ix_checkins_pair_id"), table_name="checkins")
    op.drop_table("checkins")
    op.drop_table("scheduled_items")
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_pairs_cohort_id_cohorts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_pairs_next_item_at"))
        batch_op.drop_index(batch_op.f("ix_pairs_cohort_id"))
        for column in ("next_item_at", "weeks", "started_on", "cohort_id", "ended_by"):
            batch_op.drop_column(column)
        batch_op.drop_column("ended_reason")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("reminders_off")
    op.drop_table("cohorts")
