"""One state of the database, read by two processes at once.

Owns how a reading transaction hands its snapshot to another connection, so
that work split between processes still sees one moment of the database.
PostgreSQL does it by name: the first transaction (REPEATABLE READ) exports
its snapshot and the other imports it (SET TRANSACTION SNAPSHOT). SQLite in
WAL mode fixes a reader's snapshot at its first read, so both first reads are
taken while a third connection holds the write lock: no commit can land
between them. The lock is held for those reads only; a writer meanwhile waits
in its busy handler for a few milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from relay.store.db import Store

# Any read of the database file starts SQLite's read transaction; the schema is always there.
_FIRST_READ = text("SELECT count(*) FROM sqlite_master")
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")  # what pg_export_snapshot() returns


@contextmanager
def exported(store: Store, session: Session) -> Iterator[str | None]:
    """Fix the session's snapshot (it must not have read yet) and keep it open to others
    while the block runs: join() it from another process inside the block.

    Yields the snapshot's name on PostgreSQL, None on SQLite.
    """
    if store.is_sqlite:
        with store.write_connection():
            session.execute(_FIRST_READ)
            yield None
        return
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    yield str(session.scalar(text("SELECT pg_export_snapshot()")))


def join(session: Session, snapshot: str | None) -> None:
    """Make the session (not read from yet) see the exported snapshot."""
    if snapshot is None:
        session.execute(_FIRST_READ)
        return
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a PostgreSQL snapshot name: {snapshot!r}")
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # SET TRANSACTION SNAPSHOT takes a literal only; the name was checked above.
    session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
