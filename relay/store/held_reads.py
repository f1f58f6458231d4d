"""Intake's read connections, held between messages: the per-message reads without a
pool checkout, a BEGIN or a COMMIT.

Owns the connections intake reads on (the rules' counts, the pair directory,
a reply's thread). Each is checked out of the engine's pool once and kept in
a free list; a message takes one, reads, and gives it back. The connections
read in autocommit: on PostgreSQL the driver's autocommit (as Store's
read_connection already did: at READ COMMITTED each statement reads its own
snapshot either way), on SQLite no transaction at all (sqlite3 with
isolation_level None, and no BEGIN from the store's "begin" listener), so
every statement sees what was committed before it and no snapshot stays
pinned between messages, holding back WAL checkpoints.

A connection is given up, not given back, after a database error (it may be
lost or in a failed state: the next message opens a new one); one left
unused for a while is pinged first on PostgreSQL, as the pool does on
checkout (relay.store.db), so a server restarted or a backend ended between
messages costs a reconnect, not a failed message. close() (the daemon's stop,
a reload) closes the idle ones at once and those in use when they come back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

AUTOCOMMIT_READS = "relay_autocommit_reads"  # execution option: the "begin" listener sends nothing
PING_AFTER_IDLE = 2.0  # seconds, as relay.store.db's pool


class HeldReads:
    """Read connections kept open for the next message."""

    def __init__(self, engine: Engine, ping: bool) -> None:
        self._engine = engine  # with the autocommit execution options
        self._ping = ping
        self._lock = threading.Lock()
        self._idle: list[tuple[Connection, float]] = []  # (connection, given back at)
        self._generation = 0  # close() starts a new one: older connections are not kept

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for one message's reads; kept for the next unless this failed."""
        connection, generation = self._take()
        try:
            yield connection
        except SQLAlchemyError:
            connection.close()  # maybe lost, maybe mid-statement: the next message opens anew
            raise
        except BaseException:
            # A refusal or the like: nothing is open on an autocommit connection.
            self._give_back(connection, generation)
            raise
        self._give_back(connection, generation)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()

    def idle_connections(self) -> list[Connection]:
        """The connections kept for the next message (for checks and tests)."""
        with self._lock:
            return [connection for connection, _ in self._idle]

    def idle_count(self) -> int:
        return len(self.idle_connections())

    def _take(self) -> tuple[Connection, int]:
        while True:
            with self._lock:
                generation = self._generation
                held = self._idle.pop() if self._idle else None
            if held is None:
                return self._engine.connect(), generation
            connection, since = held
            if not connection.invalidated and self._alive(connection, since):
                return connection, generation
            connection.close()

    def _alive(self, connection: Connection, since: float) -> bool:
        if not self._ping or time.monotonic() - since < PING_AFTER_IDLE:
            return True
        try:
            dbapi_connection = connection.connection.dbapi_connection
            return dbapi_connection is not None and connection.dialect.do_ping(dbapi_connection)
        except Exception as error:
            connection.invalidate(error)
            return False

    def _give_back(self, connection: Connection, generation: int) -> None:
        if not connection.invalidated:
            with self._lock:
                if generation == self._generation:
                    self._idle.append((connection, time.monotonic()))
                    return
        connection.close()
