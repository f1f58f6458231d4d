"""Pairs can be paused: a third state between active and ended.

Revision ID: 0011
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD = ("active", "ended")
NEW = ("active", "paused", "ended")


def _status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="pair_status", native_enum=False, length=16)


def _swap(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    # The enum is a VARCHAR with a CHECK constraint: the type stays, the CHECK changes.
    # SQLite rebuilds the table in batch mode (its CHECKs are not reflected, so the
    # old one is gone with the old table); PostgreSQL drops and recreates it.
    checked = ", ".join(f"'{value}'" for value in new)
    with op.batch_alter_table("pairs", schema=None, recreate="auto") as batch_op:
        if op.get_bind().dialect.name != "sqlite":
            batch_op.drop_constraint(op.f("ck_pairs_pair_status"), type_="check")
        batch_op.alter_column("status", existing_type=_status(old), type_=_status(new))
        batch_op.create_check_constraint("pair_status", sa.text(f"status IN ({checked})"))


def upgrade() -> None:
    _swap(OLD, NEW)


def downgrade() -> None:
    op.execute("UPDATE pairs SET status = 'active' WHERE status = 'paused'")
    _swap(NEW, OLD)
