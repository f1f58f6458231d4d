"""The group writer keeps one connection while work keeps coming, and gives it back.

Checking a connection out of the pool and back for every commit cost more than
SQLite's part of the commit, so the writer holds its connection between
commits; but only while work comes (a writer left idle, or one a test forgot
to close, must not hold a PostgreSQL backend for ever), and never after a
failure (a broken connection is not trusted again).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from relay.store import db, group_commit
from relay.store.group_commit import GroupWriter
from tests.conftest import wait_for


def _dbapi_connection(connection: Connection) -> int:
    return id(connection.connection.dbapi_connection)


def test_commits_in_a_row_share_a_connection_given_back_when_idle(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(group_commit, "HOLD_SECONDS", 0.3)
    writer = GroupWriter(store)
    try:
        first = writer.write(_dbapi_connection)
        assert writer.write(_dbapi_connection) == first
        assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        wait_for(lambda: store.engine.pool.checkedout() == 0, 10, "the connection given back")  # type: ignore[attr-defined]
        assert writer.write(lambda connection: connection.scalar(text("SELECT 1"))) == 1
    finally:
        writer.close()
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_after_a_failed_commit_the_next_one_takes_a_fresh_connection(store: db.Store):
    writer = GroupWriter(store)
    try:
        writer.write(_dbapi_connection)

        def fails(connection: Connection) -> None:
            connection.execute(text("SELECT * FROM no_such_table"))

        with pytest.raises(Exception, match="no_such_table"):
            writer.write(fails)
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert writer.write(lambda connection: connection.scalar(text("SELECT 1"))) == 1
        assert writer.batches == 2  # the failed one is not counted
    finally:
        writer.close()
