"""Offer reminders: when the step an offer waits on (the mentee's choice, or the open
invitation) is half way to its deadline, its person is reminded once.

offers.remind_at is that moment; NULL once the reminder is sent (or when there is
none to send). A reminder is claimed by a conditional UPDATE that sets it to NULL,
so two ticks or two relays send it once.

Revision ID: 0018
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_offers_remind_at"), ["remind_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offers_remind_at"))
        batch_op.drop_column("remind_at")
