"""Reading the database over a plain DB-API connection, for commands that must start fast.

Owns the path `relay status` takes without SQLAlchemy (whose import alone
costs several times a whole quick command, bench/startup.py): opening the
database with the stdlib's sqlite3, or psycopg for a ``postgresql+psycopg``
URL, with the same timeouts as relay.store.db; checking its schema is at
head; and the ``Reader`` the operators' queries (relay.ops) run on. A Reader
runs SQL text over this plain connection or over a SQLAlchemy session
alike, so each of those queries is written once, as SQL text with ``:name``
parameters, whichever path runs it.

open_plain() says None whenever it is not sure (a URL with a query string or
another driver, a SQLite file that is missing, empty or not SQLite, a schema
not at head): the command then opens the database through relay.store.db
like every other command, which creates, refuses or explains. Imports no
SQLAlchemy at the top.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

from relay.errors import DatabaseError
from relay.settings import DatabaseSettings
from relay.store.migration_files import head_from_files

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

Row = tuple[Any, ...]

SCHEMA_REVISION = "SELECT version_num FROM alembic_version"

# How SQLAlchemy's SQLite dialect stores a DateTime: text that sorts as time does.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")
_PSYCOPG_PREFIX = "postgresql+psycopg://"
_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Reader(Protocol):
    """Runs one SELECT with ``:name`` parameters and returns its rows."""

    def rows(self, sql: str, **params: object) -> list[Row]: ...


def first(reader: Reader, sql: str, **params: object) -> Row | None:
    found = reader.rows(sql, **params)
    return found[0] if found else None


def scalar(reader: Reader, sql: str, **params: object) -> Any:
    row = first(reader, sql, **params)
    return None if row is None else row[0]


def timestamp(value: object) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite hands back text, PostgreSQL a datetime."""
    if value is None:
        return None
    found = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(found, datetime):
        raise TypeError(f"not a stored time: {value!r}")
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _bound(params: dict[str, object], sqlite: bool) -> dict[str, object]:
    """Times as the backend stores them: aware UTC, and on SQLite the dialect's text."""
    bound = {}
    for name, value in params.items():
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store")
            value = value.astimezone(UTC)
            if sqlite:
                value = value.strftime(_SQLITE_TIME)
        bound[name] = value
    return bound


class SqlAlchemyReader:
    """A Reader over a SQLAlchemy session or connection (the daemon's, or a command's)."""

    def __init__(self, session: Session | Connection) -> None:
        from sqlalchemy.orm import Session

        self.session = session
        bind = session.get_bind() if isinstance(session, Session) else session
        self.sqlite = bind.dialect.name == "sqlite"

    def rows(self, sql: str, **params: object) -> list[Row]:
        from sqlalchemy import text

        result = self.session.execute(text(sql), _bound(params, self.sqlite))
        return [tuple(row) for row in result]


class PlainReader:
    """A Reader over a DB-API connection (sqlite3 or psycopg), in one read-only transaction."""

    def __init__(self, connection: Any, *, sqlite: bool) -> None:
        self.connection = connection
        self.sqlite = sqlite

    def rows(self, sql: str, **params: object) -> list[Row]:
        # sqlite3 takes :name as it is; psycopg wants %(name)s.
        query = sql if self.sqlite else _NAMED_PARAMETER.sub(r"%(\1)s", sql)
        cursor = self.connection.execute(query, _bound(params, self.sqlite))
        return [tuple(row) for row in cursor.fetchall()]

    def close(self) -> None:
        self.connection.close()


def postgres_connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    """libpq's bounds on waiting: for reaching the server, and for one statement or lock."""
    statement_ms = int(settings.statement_timeout.total_seconds() * 1000)
    return {
        # libpq counts whole seconds; 0 would mean "wait forever".
        "connect_timeout": max(1, round(settings.connect_timeout.total_seconds())),
        "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
    }


def quick_revision(reader: Reader) -> str | None:
    """The database's one schema revision; None if there is not exactly one."""
    rows = reader.rows(SCHEMA_REVISION)
    return str(rows[0][0]) if len(rows) == 1 else None


@contextmanager
def plain_reader(settings: DatabaseSettings) -> Iterator[PlainReader | None]:
    """A Reader on the database at head without SQLAlchemy, or None: take relay.store.db."""
    reader = _open_sqlite(settings) or _open_postgres(settings)
    if reader is None:
        yield None
        return
    try:
        if _at_head(reader):
            yield reader
        else:
            yield None
    finally:
        reader.close()


def _at_head(reader: PlainReader) -> bool:
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    if not reader.sqlite:
        import psycopg

        errors = (psycopg.Error,)
    try:
        revision = quick_revision(reader)
    except errors:
        return False  # no alembic_version table: relay.store.db says what is wrong
    return revision is not None and revision == head_from_files()


def _open_sqlite(settings: DatabaseSettings) -> PlainReader | None:
    url = settings.url
    name = next((url[len(prefix) :] for prefix in _SQLITE_PREFIXES if url.startswith(prefix)), "")
    if not name or "?" in name or name == ":memory:" or name.startswith("file:"):
        return None
    path = Path(name)
    # No header read with open(): see relay.store.sqlite_files. A file that is not SQLite
    # fails the revision query, and relay.store.db says what is wrong, as for an empty one.
    try:
        if path.stat().st_size == 0:
            return None  # empty: relay.store.db creates the schema
    except OSError:
        return None  # missing or unreadable: relay.commands.database_url says so
    try:
        # mode=rw: never create a file; a transaction so that every read sees one moment.
        connection = sqlite3.connect(
            f"file:{quote(str(path.absolute()))}?mode=rw",
            uri=True,
            timeout=settings.busy_timeout.total_seconds(),
            isolation_level=None,
        )
        connection.execute("BEGIN")
    except sqlite3.Error:
        return None  # relay.store.db says what is wrong, as for every command
    return PlainReader(connection, sqlite=True)


def _open_postgres(settings: DatabaseSettings) -> PlainReader | None:
    url = settings.url
    if not url.startswith(_PSYCOPG_PREFIX) or "?" in url:
        return None
    try:
        import psycopg
    except ImportError:
        return None  # relay.commands.database_url names the package to install
    conninfo = "postgresql://" + url[len(_PSYCOPG_PREFIX) :]
    try:
        connection = psycopg.connect(conninfo, **postgres_connect_args(settings))
    except psycopg.Error as error:
        raise DatabaseError(f"cannot open the database {_hidden(url)}: {error}") from None
    connection.read_only = True
    return PlainReader(connection, sqlite=False)


def _hidden(url: str) -> str:
    """The URL as SQLAlchemy shows it with hide_password: the password as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, place = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:***@{place}").geturl()
