"""Safeguarding: concerns and their history, the access log, spot checks, overdue alerts,
minors' consent and mentors' background checks, why a pair was paused.

The access log is append-only: triggers refuse UPDATE and DELETE on it.

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relay.store.models

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER access_log_no_{verb} BEFORE {verb.upper()} ON access_log
    BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END"""
    for verb in ("update", "delete")
]
_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the access log is append-only'; END $$""",
    """CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only()""",
]


def _append_only() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect, [])
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "concerns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("raised_by", sa.String(length=320), nullable=False),
        sa.Column("raiser_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "investigating",
                "referred",
                "closed",
                name="concern_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["raiser_id"], ["participants.id"], name=op.f("fk_concerns_raiser_id_participants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concerns")),
    )
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader", sa.String(length=200), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("concern_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("read_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_access_log_pair_id_pairs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_log_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "concern_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "investigating",
                "referred",
                "closed",
                name="concern_event_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["concern_id"], ["concerns.id"], name=op.f("fk_concern_events_concern_id_concerns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concern_events")),
    )
    with op.batch_alter_table("concern_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_concern_events_concern_id"), ["concern_id"], unique=False
        )

    op.create_table(
        "concern_pairs",
        sa.Column("concern_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["concern_id"], ["concerns.id"], name=op.f("fk_concern_pairs_concern_id_concerns")
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_concern_pairs_pair_id_pairs")
        ),
        sa.PrimaryKeyConstraint("concern_id", "pair_id", name=op.f("pk_concern_pairs")),
    )
    with op.batch_alter_table("concern_pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_concern_pairs_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "concern_messages",
        sa.Column("concern_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["concern_id"], ["concerns.id"], name=op.f("fk_concern_messages_concern_id_concerns")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_concern_messages_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("concern_id", "message_id", name=op.f("pk_concern_messages")),
    )
    with op.batch_alter_table("concern_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_concern_messages_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "overdue_alerts",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("alerted_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_overdue_alerts_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_overdue_alerts")),
    )
    op.create_table(
        "spot_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("checked_by", sa.String(length=200), nullable=False),
        sa.Column("concern_id", sa.Integer(), nullable=True),
        sa.Column("checked_at", relay.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["concern_id"], ["concerns.id"], name=op.f("fk_spot_checks_concern_id_concerns")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_spot_checks_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_checks")),
        sa.UniqueConstraint("message_id", name=op.f("uq_spot_checks_message_id")),
    )
    _append_only()
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=32), nullable=True))

    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("minor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("guardian_email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("consent_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("consent_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("checked_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("check_warned_for", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("check_warned_for")
        batch_op.drop_column("checked_until")
        batch_op.drop_column("consent_date")
        batch_op.drop_column("consent_by")
        batch_op.drop_column("guardian_email")
        batch_op.drop_column("minor")

    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_column("pause_reason")

    op.drop_table("spot_checks")
    op.drop_table("overdue_alerts")
    with op.batch_alter_table("concern_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_concern_messages_message_id"))

    op.drop_table("concern_messages")
    with op.batch_alter_table("concern_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_concern_pairs_pair_id"))

    op.drop_table("concern_pairs")
    with op.batch_alter_table("concern_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_concern_events_concern_id"))

    op.drop_table("concern_events")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_log_pair_id"))

    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_log_append_only ON access_log")
        op.execute("DROP FUNCTION access_log_append_only()")
    op.drop_table("access_log")
    op.drop_table("concerns")
