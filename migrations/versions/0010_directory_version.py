"""The directory version: a counter every change to pairs or participants bumps.

The daemon keeps the pair directory (token -> pair, participants, addresses)
in memory and reads this one row before each message: a different number
means something changed and the directory is loaded again. Triggers bump
it, so every writer (CLI, another process, a future command, plain SQL) is
seen without having to remember to.

Also messages.unverified (the From was not authenticated: the rules' counters
leave such mail out) in the counters' indexes, so counting a sender's mail
reads only the index: on SQLite a column after the raw message would mean
reading every counted message's whole body.

Revision ID: 0010
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0015"
branch_labels = None
depends_on = None

# Only the columns the directory reads: a column added later for another purpose
# (a last-message time, say) does not empty the cache on every message.
WATCHED = {
    "pairs": "token, mentor_id, mentee_id, status, watched",
    "participants": "email, display_name, role, watched",
    "participant_addresses": "participant_id, email",
}
BUMP = "UPDATE directory_version SET version = version + 1 WHERE id = 1"


UNVERIFIED_HIT = '%"rule": "authentication"%'  # as the rules' Hit.to_json writes it


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unverified", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        sa.text("UPDATE messages SET unverified = true WHERE hits LIKE :hit").bindparams(
            hit=UNVERIFIED_HIT
        )
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sender_received")
        batch_op.drop_index("ix_messages_pair_sender")
        batch_op.create_index(
            "ix_messages_pair_sender", ["pair_id", "sender_id", "status", "unverified"]
        )
        batch_op.create_index(
            "ix_messages_sender_received", ["sender_id", "received_at", "unverified"]
        )
    op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_version")),
    )
    op.execute("INSERT INTO directory_version (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table, columns in WATCHED.items():
            op.execute(
                f"CREATE TRIGGER {table}_directory_version "
                f"AFTER INSERT OR DELETE OR UPDATE OF {columns} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()"
            )
        return
    for table, columns in WATCHED.items():
        for event in ("INSERT", "DELETE", f"UPDATE OF {columns}"):
            name = f"{table}_directory_{event.split()[0].lower()}"
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_directory_version ON {table}")
        op.execute("DROP FUNCTION bump_directory_version()")
    else:
        for table in WATCHED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_directory_{event}")
    op.drop_table("directory_version")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sender_received")
        batch_op.drop_index("ix_messages_pair_sender")
        batch_op.create_index("ix_messages_pair_sender", ["pair_id", "sender_id"])
        batch_op.create_index("ix_messages_sender_received", ["sender_id", "received_at"])
        batch_op.drop_column("unverified")
