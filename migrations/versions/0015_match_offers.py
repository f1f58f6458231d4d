"""Match offers by email: offers and the mentors they name (relay/offers).

Revision ID: 0015
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def _kind(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("mentee_id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            _kind("offer_state", "open", "accepted", "declined", "expired", "cancelled"),
            nullable=False,
        ),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("chosen_at", UTC_DATETIME, nullable=True),
        sa.Column("chosen_order", sa.String(length=100), nullable=False),
        sa.Column("answer_message_id", sa.String(length=998), nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["mentee_id"], ["participants.id"], name=op.f("fk_offers_mentee_id_participants")
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_offers_cohort_id_cohorts")
        ),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_offers_pair_id_pairs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_mentee_id"), ["mentee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_offers_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "offer_choices",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("mentor_capacity", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column(
            "state",
            _kind(
                "choice_state",
                "listed",
                "invited",
                "accepted",
                "declined",
                "expired",
                "full",
                "withdrawn",
            ),
            nullable=False,
        ),
        sa.Column("invited_at", UTC_DATETIME, nullable=True),
        sa.Column("answered_at", UTC_DATETIME, nullable=True),
        sa.Column("answer_message_id", sa.String(length=998), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_choices_offer_id_offers")
        ),
        sa.ForeignKeyConstraint(
            ["mentor_id"],
            ["participants.id"],
            name=op.f("fk_offer_choices_mentor_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_choices")),
        sa.UniqueConstraint("offer_id", "rank", name=op.f("uq_offer_choices_offer_id")),
    )
    with op.batch_alter_table("offer_choices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offer_choices_offer_id"), ["offer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_offer_choices_mentor_id"), ["mentor_id"], unique=False)


def downgrade() -> None:
    op.drop_table("offer_choices")
    op.drop_table("offers")
