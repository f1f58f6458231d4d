"""Engine, sessions and schema version.

Owns how the relay talks to its database: SQLite pragmas (WAL so readers
never wait for the daemon, synchronous=FULL so a 250 survives power loss, a
busy timeout, and BEGIN IMMEDIATE so two writers queue up instead of failing
with "database is locked" on a lock upgrade), the session factory, and the
schema check every command runs first: a new SQLite file is created at head,
a database behind head is refused until `relay db upgrade`; and the bounds
on waiting ([database] connect_timeout and statement_timeout for PostgreSQL,
busy_timeout for SQLite), so a frozen or locked database is an error the
caller turns into 451 soon, not a client left without a reply.

Alembic is imported only to migrate, or when the quick check cannot tell:
the quick check reads the database's revision with one SELECT and the head
revision from the migration files (relay.store.migration_files), because
importing Alembic and loading every migration would cost each command more
time than all its own work (bench/startup.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from relay.errors import DatabaseError, SchemaBehindError
from relay.settings import DatabaseSettings
from relay.store.direct import run_text
from relay.store.held_reads import AUTOCOMMIT_READS, HeldReads
from relay.store.migration_files import head_from_files, migrations_folder
from relay.store.plain import SqlAlchemyReader, postgres_connect_args, quick_revision

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

READ_ONLY = "relay_read_only"  # execution option: begin a deferred (reading) transaction
# Connections kept open (PostgreSQL): the daemon's intake threads each hold one while they
# read, and one closed on its return is one more backend started for the next message.
POOL_SIZE = 20
POOL_OVERFLOW = 20
PING_AFTER_IDLE = 2.0  # seconds unused before a pooled connection is checked on checkout
_IDLE_SINCE = "relay_idle_since"


def make_engine(url: str, settings: DatabaseSettings | None = None) -> Engine:
    limits = settings or DatabaseSettings()
    if url.startswith("sqlite"):
        busy = limits.busy_timeout.total_seconds()
        engine = create_engine(url, connect_args={"timeout": busy})
        _tune_sqlite(engine, int(busy * 1000))
        return engine
    connect_args = postgres_connect_args(limits) if url.startswith("postgresql") else {}
    engine = create_engine(
        url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, connect_args=connect_args
    )
    _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that sat unused: under load it cost a
    round trip per transaction, while a server restarted or a connection cut while idle
    is still found (and replaced) before it fails a statement."""

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # new, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool replaces the connection and tries again.
            raise DisconnectionError(str(error)) from error


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below can say IMMEDIATE.
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(AUTOCOMMIT_READS, False):
            return  # relay.store.held_reads: each statement on its own, no snapshot held
        reading = options.get(READ_ONLY, False)
        # On the cursor: once per message, and SQLAlchemy's execution of it cost more
        # than SQLite's; a lock timeout is still SQLAlchemy's OperationalError.
        run_text(connection, "BEGIN DEFERRED" if reading else "BEGIN IMMEDIATE")


class Store:
    """The database a command or the daemon works on."""

    def __init__(self, url: str, settings: DatabaseSettings | None = None) -> None:
        self.url = url
        self.settings = settings  # with url: what another process opens the same store by
        self.engine = make_engine(url, settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        # PostgreSQL: intake's reads (the rules' counts, the directory, a reply's thread)
        # in autocommit, one round trip per statement: psycopg would send BEGIN and COMMIT
        # as two more, and at READ COMMITTED a transaction gives plain SELECTs nothing
        # (each statement reads its own snapshot either way).
        self._reading = self.engine.execution_options(
            **{READ_ONLY: True}, **({} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"})
        )
        # Intake's per-message reads, on connections it keeps between messages.
        self.held_reads = HeldReads(
            self.engine.execution_options(
                **{AUTOCOMMIT_READS: True},
                **({} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}),
            ),
            ping=not self.is_sqlite,
        )
        # SQLite has one writer at a time. Threads of this process queue here, in
        # order, instead of sleeping and polling in SQLite's busy handler; other
        # processes still wait in the busy handler.
        self._one_writer = threading.RLock() if self.is_sqlite else contextlib.nullcontext()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._one_writer, self._sessions.begin() as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core transaction for the hot path: committed when the block ends."""
        with self._one_writer, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def write_on(self, connection: Connection) -> Iterator[Connection]:
        """write_connection() on a connection the caller holds (the group writer's)."""
        with self._one_writer, connection.begin():
            yield connection

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core read transaction: on SQLite it takes no write lock; on PostgreSQL, plain
        SELECTs in autocommit (nothing written here)."""
        with self._reading.begin() as connection:
            yield connection

    def held_read(self) -> AbstractContextManager[Connection]:
        """read_connection() for the per-message reads: on a connection held between
        calls, each statement in autocommit (relay.store.held_reads)."""
        return self.held_reads.reading()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Reads only: on SQLite it takes no write lock, so it never waits for a writer."""
        with self._readers.begin() as session:
            yield session

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.held_reads.close()
        self.engine.dispose()


def alembic_config(store: Store) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_folder()))
    config.attributes["engine"] = store.engine
    return config


def head_revision(store: Store) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(store)).get_current_head()


def current_revision(store: Store) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with store.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as error:
        raise DatabaseError(f"cannot open the database {_safe_url(store)}: {error.orig}") from None


def upgrade(store: Store, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(store), revision)


def downgrade(store: Store, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(store), revision)


def open_store(url: str, settings: DatabaseSettings | None = None) -> Store:
    """Open the database for a command: create a new SQLite one, refuse one that is behind."""
    store = Store(url, settings)
    quick = _quick_revision(store)
    if quick is not None and quick == head_from_files():
        return store
    current = current_revision(store)
    head = head_revision(store)
    if current == head:
        return store
    if current is None and store.is_sqlite and not inspect(store.engine).get_table_names():
        upgrade(store)
        return store
    store.dispose()
    if current is None:
        raise SchemaBehindError(
            f"the database {_safe_url(store)} has no relay schema; run `relay db upgrade`"
        )
    raise SchemaBehindError(
        f"the database {_safe_url(store)} is at revision {current}, this relay needs {head}; "
        "run `relay db upgrade`"
    )


def _safe_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


def _quick_revision(store: Store) -> str | None:
    """The database's one schema revision, read without Alembic; None if unsure."""
    try:
        with store.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return quick_revision(SqlAlchemyReader(connection))
    except OperationalError:
        return None  # current_revision() says what is wrong
