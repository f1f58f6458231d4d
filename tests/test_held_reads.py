"""Intake's read connections, held between messages (relay.store.held_reads).

What an operator relies on: a count read on a held connection sees what another
connection (another process) committed just before, on SQLite a held connection
keeps no snapshot that would hold back a WAL checkpoint, the running daemon
accepts the next message after its PostgreSQL backend was ended, and nothing
stays open after the daemon stops.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from relay.config import Config
from relay.store import counters, db, held_reads
from relay.store.directory import PairDirectory
from relay.store.messages import _INSERT_MESSAGE
from relay.store.states import utcnow
from tests.conftest import Sink, mail
from tests.store_rows import message_row, stored_pair


def _relayed(sink: Sink, address: str) -> list[str]:
    """The texts of the mail relayed to address (not the introduction)."""
    texts = [m.message.get_body(("plain",)).get_content().strip() for m in sink.to(address)]
    return [each for each in texts if not each.startswith("Hello")]


def _wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_count_committed_elsewhere_is_seen_by_the_next_read(store: db.Store, config: Config):
    pair = stored_pair(store, config)
    other = db.Store(store.url)  # its own engine and connections: another process's writes
    since = utcnow() - timedelta(hours=1)
    try:
        seen = []
        for number in range(3):
            with store.held_read() as connection:
                seen.append(
                    counters.sender_counts(connection, pair.id, pair.mentor_id, since, 9, 20)
                )
            with other.write_connection() as connection:
                connection.execute(_INSERT_MESSAGE, message_row(pair, number))
        with store.held_read() as connection:
            seen.append(counters.sender_counts(connection, pair.id, pair.mentor_id, since, 9, 20))
        assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]
        assert store.held_reads.idle_count() == 1  # the same connection, kept each time
    finally:
        other.dispose()


@pytest.mark.sqlite
def test_a_held_sqlite_connection_does_not_hold_back_a_checkpoint(store: db.Store, config: Config):
    pair = stored_pair(store, config)
    with store.held_read() as connection:  # what a message reads: the pair, the counts
        assert PairDirectory().lookup(connection, pair.token)[0] is not None
        counters.sender_counts(connection, pair.id, pair.mentor_id, utcnow(), 9, 20)
    with store.write_connection() as connection:
        connection.execute(_INSERT_MESSAGE, message_row(pair, 1))
    path = store.engine.url.database
    assert path is not None
    checkpointer = sqlite3.connect(path, timeout=0)
    try:
        busy, log_pages, moved = checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpointer.close()
    assert store.held_reads.idle_count() == 1
    assert (busy, log_pages, moved) == (0, 0, 0)  # every frame moved, the log emptied


def _backends(url: str) -> set[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return {row.pid for row in rows}
    finally:
        engine.dispose()


def _open_files(path: str) -> int:
    real = os.path.realpath(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(real):
                count += 1
        except OSError:
            continue
    return count


def _open_now(url: str) -> Callable[[], Any]:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        return lambda: _open_files(path)
    return lambda: _backends(url)


def test_nothing_the_daemon_held_stays_open_after_it_stops(configured, sink: Sink):
    relay, pair, store = configured()
    store.dispose()  # the test's own connections: what is left open is the daemon's
    open_now = _open_now(store.url)
    for number in range(3):
        relay.send(
            mail(pair.mentee, pair.address, body=f"note {number}"), pair.mentee, pair.address
        )
    assert _wait_until(lambda: len(_relayed(sink, pair.mentor)) == 3)
    assert relay.running.store.held_reads.idle_count() >= 1
    assert open_now()
    relay.stop()
    relay.stop = lambda: None  # the fixture's own stop: already done
    assert _wait_until(lambda: not open_now()), open_now()


@pytest.mark.postgres
def test_the_next_message_is_accepted_after_the_held_backend_is_ended(
    configured, sink: Sink, monkeypatch: pytest.MonkeyPatch
):
    relay, pair, store = configured()
    relay.send(mail(pair.mentee, pair.address, body="first"), pair.mentee, pair.address)
    held = relay.running.store.held_reads
    pids = [each.connection.dbapi_connection.info.backend_pid for each in held.idle_connections()]
    assert pids
    with store.engine.connect() as connection:
        for pid in pids:  # as a server restart would, for these connections
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # Idle for longer than the ping interval, as a restart between messages would be.
    monkeypatch.setattr(held_reads, "PING_AFTER_IDLE", 0.0)
    relay.send(mail(pair.mentee, pair.address, body="second"), pair.mentee, pair.address)
    assert _wait_until(lambda: len(_relayed(sink, pair.mentor)) == 2)
    assert _relayed(sink, pair.mentor) == ["first", "second"]
