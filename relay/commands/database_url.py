"""Checking [database] url before anything connects, so a mistake is one clear line.

Owns what a command says about a database URL it cannot use: not a URL at
all, a kind of database SQLAlchemy does not know, a driver that is not
installed (naming the package to install), a SQLite path that is a folder
or a file that is not a SQLite database, and a SQLite file that does not
exist. Only `relay serve` and `relay db upgrade` create a new SQLite file;
every other command is told the file does not exist, so a typo in the path
never shows a moderator an empty database.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from relay.errors import DatabaseError
from relay.store.sqlite_files import UnreadableFile, holds_sqlite

# SQLAlchemy's driver name -> the package on PyPI that provides it.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "mysqldb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb",
    "asyncmy": "asyncmy",
    "aiomysql": "aiomysql",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
_EXAMPLES = "e.g. sqlite:///relay.db or postgresql+psycopg://user:password@host/relay"


def check(url: str, *, create: bool) -> None:
    """DatabaseError if url cannot be used; create=False: a SQLite file must already exist."""
    parsed = _parse(url)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise DatabaseError(
            f"[database] url: unknown kind of database {parsed.drivername!r} ({_EXAMPLES})"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        package = DRIVER_PACKAGES.get(dialect.driver, error.name or dialect.driver)
        raise DatabaseError(
            f"[database] url: {parsed.drivername} needs the Python package {package}, "
            f"which is not installed (pip install '{package}')"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed, create=create)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        shown = url if "@" not in url else "(hidden: it holds a password)"
        raise DatabaseError(
            f"[database] url {shown!r} is not a database URL ({_EXAMPLES})"
        ) from None


def _check_sqlite_file(parsed: URL, *, create: bool) -> None:
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:"):
        return
    path = Path(name)
    if path.is_dir():
        raise DatabaseError(f"the database {path} is a folder, not a SQLite file")
    if not path.exists():
        if not create:
            raise DatabaseError(
                f"the database {path} does not exist; check [database] url, "
                "or create it with `relay db upgrade`"
            )
        if not path.parent.is_dir():
            raise DatabaseError(f"cannot create the database {path}: {path.parent} does not exist")
        return
    try:
        is_database = holds_sqlite(path)
    except UnreadableFile as error:
        raise DatabaseError(f"cannot read the database {path}: {error}") from None
    if not is_database:
        raise DatabaseError(f"{path} is not a SQLite database (check [database] url)")
