"""Whether a file holds a SQLite database, asked of SQLite itself rather than read with open().

Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
own connections' locks included ("How To Corrupt An SQLite Database File", 2.2). A header
read with open() in a process that also runs the relay (the daemon's checks, the tests'
in-process commands beside an in-thread daemon) could let another process take the
database for its last user and delete the WAL under the open connections. SQLite shares
one lock table among its own opens of a file, so a connection is the safe way to ask.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote


class UnreadableFile(Exception):
    """SQLite could not open the file at all (permissions, a dangling link)."""


def holds_sqlite(path: Path) -> bool:
    """False when the file is not a SQLite database; an empty file counts (SQLite fills it).

    Raises UnreadableFile when SQLite cannot open it. Never creates a file.
    """
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True)
    except sqlite3.Error as error:
        raise UnreadableFile(str(error)) from None
    try:
        connection.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as error:
        if error.sqlite_errorname == "SQLITE_NOTADB":
            return False
        if error.sqlite_errorname == "SQLITE_CANTOPEN":
            raise UnreadableFile(str(error)) from None
        return True  # busy or locked: it is a database; the real open reports the rest
    finally:
        connection.close()
    return True
