"""Per-message statements run on the DB-API cursor, compiled once per dialect.

Owns the fast way the hot path executes the few statements every message
costs (its rows, the rules' counts, the directory version, the delivery
outcomes). SQLAlchemy still builds each statement and compiles it, once per
dialect: the SQL text, the order of its parameters, each parameter's bind
processor (UtcDateTime's conversion, the enums, booleans) and the columns
whose Python defaults fill a missing value. Each execution then only
arranges the values and calls the cursor: it skips SQLAlchemy's execution
context, parameter construction and result objects, which cost several times
what SQLite itself spends on such a statement (bench/RESULTS.md, issue 14,
ninth pass).

What stays as with Connection.execute: the statement runs in the caller's
transaction on its connection; a driver error is raised as SQLAlchemy's
(sqlalchemy.exc.DBAPIError.instance: OperationalError, IntegrityError, ...)
and a lost connection is invalidated. A connection whose engine has
statement listeners (before/after_cursor_execute on the engine or on Engine:
instrumentation, a test counting statements) runs the statement through
Connection.execute instead, so those listeners see every statement.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Executable, Insert, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_MISSING = object()


@dataclass(frozen=True)
class _Parameter:
    """One parameter of the compiled statement, in the driver's order."""

    name: str  # as the driver sees it (pyformat) and as the caller gives it
    process: Callable[[Any], Any] | None
    constant: Any = _MISSING  # a value fixed in the statement, already processed
    default: Callable[[], Any] | None = None  # an insert's Python-side column default


@dataclass(frozen=True)
class _Form:
    """The statement compiled for one dialect."""

    sql: str
    parameters: tuple[_Parameter, ...]
    positional: bool
    returns_key: bool  # an insert that reads its new key back with RETURNING (PostgreSQL)
    # An UPDATE's parameters that change from row to row, with their SQL types: the
    # arrays its rows are joined with on PostgreSQL (else empty).
    row_columns: tuple[tuple[str, str], ...] = ()

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        out = []
        for each in self.parameters:
            if each.constant is not _MISSING:
                out.append(each.constant)
                continue
            value = values.get(each.name, _MISSING)
            if value is _MISSING:
                if each.default is None:
                    raise KeyError(f"a value is required for {each.name!r}")
                value = each.default()
            out.append(value if each.process is None else each.process(value))
        if self.positional:
            return tuple(out)
        return {each.name: value for each, value in zip(self.parameters, out, strict=True)}


class Direct:
    """A statement run on the cursor; keys: the columns an insert is given (else all)."""

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = None if keys is None else list(keys)
        self._forms: dict[tuple[str, str, bool], _Form] = {}
        self._lock = threading.Lock()

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """Run once; for an insert, returns the new row's primary key (else None)."""
        if _watched(connection):
            result = connection.execute(self.statement, dict(values))
            key = result.inserted_primary_key if isinstance(self.statement, Insert) else None
            return key[0] if key else None
        form = self._form(connection.dialect, many=False)
        arguments = form.arguments(values)
        if form.returns_key:
            return _run(connection, form.sql, arguments, lambda cursor: cursor.fetchone()[0])
        if not isinstance(self.statement, Insert):
            return _run(connection, form.sql, arguments, lambda _cursor: None)
        return _run(connection, form.sql, arguments, lambda cursor: cursor.lastrowid)

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for each row, in one executemany; on PostgreSQL, an insert of several rows
        as one INSERT of all of them (the form SQLAlchemy's "insertmanyvalues" gives an
        insert that returns keys), the rows in the order given, and an update of several
        rows as one UPDATE ... FROM unnest(...): then each row given must match other
        rows of the table than the others do (as the delivery outcomes do, one per claim),
        since a table row two of them matched would be updated by one, not by both in
        turn."""
        if _watched(connection):
            connection.execute(self.statement, [dict(row) for row in rows])
            return
        form = self._form(connection.dialect, many=True)
        together = len(rows) > 1 and connection.dialect.name == "postgresql"
        if together and not form.positional and form.row_columns:
            joined = _update_rows_together(form.sql, form.row_columns)
            if joined is not None:
                sql, before, each_row, after = joined
                named = cast(list[dict[str, Any]], [form.arguments(row) for row in rows])
                flat: list[Any] = [named[0][name] for name in before]  # alike in every row
                flat += [[each[name] for each in named] for name in each_row]
                flat += [named[0][name] for name in after]
                _run(connection, sql, flat, lambda _cursor: None)
                return
        shape = _rows_together(form.sql, len(rows)) if together and not form.positional else None
        if shape is not None:
            sql, names = shape
            named = cast(list[dict[str, Any]], [form.arguments(row) for row in rows])
            flat = [each[name] for each in named for name in names]
            _run(connection, sql, flat, lambda _cursor: None)
            return
        arguments = [form.arguments(row) for row in rows]
        _run(connection, form.sql, arguments, lambda _cursor: None, many=True)

    def first(self, connection: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row as the driver gives it: for integer columns only (no result
        processing is applied)."""
        if _watched(connection):
            row = connection.execute(self.statement, dict(values)).first()
            return None if row is None else tuple(row)
        form = self._form(connection.dialect, many=False)
        arguments = form.arguments(values)
        found = _run(connection, form.sql, arguments, lambda cursor: cursor.fetchone())
        return None if found is None else tuple(found)

    def _form(self, dialect: Dialect, many: bool) -> _Form:
        key = (dialect.name, dialect.driver, many)  # one per database and driver
        form = self._forms.get(key)
        if form is None:
            with self._lock:
                form = self._forms.setdefault(key, compile_form(self, dialect, many))
        return form


def compile_form(direct: Direct, dialect: Dialect, many: bool) -> _Form:
    """The statement as SQLAlchemy compiles it to run once, or in an executemany."""
    statement = direct.statement
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=direct.keys, for_executemany=many)
    assert isinstance(compiled, SQLCompiler)
    if any(bind.expanding for bind in compiled.binds.values()):
        raise ValueError("an expanding (IN) parameter needs SQLAlchemy's execution")
    defaults = {
        column.key: column.default
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]
        if column.default is not None
    }
    caller = set(direct.keys or ())
    parameters = []
    positional = compiled.positiontup is not None
    if compiled.positiontup is not None:
        binds = [(name, compiled.binds[name]) for name in compiled.positiontup]
    else:  # each bind once, by the name the SQL text gives it
        binds = list({name: bind for bind, name in compiled.bind_names.items()}.items())
    for name, bind in binds:
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        default = defaults.get(name)
        if name in caller or (bind.required and name not in defaults):
            parameters.append(_Parameter(name, process))
        elif default is not None:
            parameters.append(_Parameter(name, process, default=_default_maker(default)))
        else:
            value = bind.effective_value
            constant = value if process is None else process(value)
            parameters.append(_Parameter(name, process, constant))
    if not positional and compiled.escaped_bind_names:
        raise ValueError("bind names that need escaping are not supported")
    returns_key = bool(compiled.implicit_returning) and not many
    row_columns: tuple[tuple[str, str], ...] = ()
    if many and not positional and isinstance(statement, Update):
        row_columns = tuple(
            (each.name, compiled.binds[each.name].type.compile(dialect=dialect))
            for each in parameters
            if each.constant is _MISSING
        )
    return _Form(compiled.string, tuple(parameters), positional, returns_key, row_columns)


_NAMED = re.compile(r"%\((\w+)\)s")
_ROWS_TOGETHER_AT_MOST = 1000  # rows in one statement; more go in an executemany


@functools.lru_cache(maxsize=512)
def _rows_together(sql: str, count: int) -> tuple[str, tuple[str, ...]] | None:
    """One INSERT ... VALUES (...), (...) of count rows, its parameters positional, and the
    names to take from each row for them, in order; None for a statement not of that form.

    psycopg's executemany sends a Bind and an Execute per row and reads a result per row
    in its pipeline, in Python: on PostgreSQL, the dearest part of a group commit."""
    head, values, row = sql.partition(" VALUES ")
    if (
        count > _ROWS_TOGETHER_AT_MOST
        or not values
        or not head.startswith("INSERT INTO ")
        or "%" in head
        or not (row.startswith("(") and row.endswith(")"))
        or " RETURNING " in row
        or "%" in _NAMED.sub("", row)
    ):
        return None
    names = tuple(_NAMED.findall(row))
    positional = _NAMED.sub("%s", row)
    return f"{head} VALUES {', '.join([positional] * count)}", names


_ROWS = "relay_rows"  # the rows' name in an UPDATE ... FROM unnest(...)


@functools.lru_cache(maxsize=512)
def _update_rows_together(
    sql: str, columns: tuple[tuple[str, str], ...]
) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None:
    """One UPDATE ... FROM unnest(...) AS relay_rows (...) WHERE ... for any number of
    rows: each per-row parameter (columns: its name and SQL type) given as one array of
    every row's value, the others (constants) given once. Returns the SQL, its
    parameters positional, and the names to take, in order: the constants before the
    arrays (from the first row), each array's, the constants after them; None for a
    statement not of that form.

    As for an insert (_rows_together): psycopg's executemany reads a result per row in
    Python, in the writer thread every commit waits for; the delivery outcomes were a
    tenth of the daemon's GIL-held time on PostgreSQL (bench/RESULTS.md, issue 14,
    thirteenth pass). Arrays rather than a VALUES list of the batch's length: the same
    SQL text whatever the batch, so psycopg prepares it once and PostgreSQL plans it
    once."""
    names = {name for name, _ in columns}
    head, where, condition = sql.partition(" WHERE ")
    if (
        not where
        or not head.startswith("UPDATE ")
        or " WHERE " in condition
        or " FROM " in head
        or " RETURNING " in condition
        or not names
        or "%" in _NAMED.sub("", sql)
    ):
        return None

    def given_once(part: str) -> tuple[str, list[str]]:
        once: list[str] = []

        def place(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in names:
                return f'{_ROWS}."{name}"'
            once.append(name)
            return "%s"

        return _NAMED.sub(place, part), once

    head, before = given_once(head)
    condition, after = given_once(condition)
    # Typed: an array whose values are all NULL must still be its column's type.
    arrays = ", ".join(f"CAST(%s AS {kind}[])" for _, kind in columns)
    listed = ", ".join(f'"{name}"' for name, _ in columns)
    joined = f"{head} FROM unnest({arrays}) AS {_ROWS} ({listed}) WHERE {condition}"
    return joined, tuple(before), tuple(name for name, _ in columns), tuple(after)


def _default_maker(default: Any) -> Callable[[], Any]:
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        make = default.arg  # SQLAlchemy wraps it to take the execution context
        return lambda: make(None)
    raise ValueError(f"a default SQLAlchemy must compute: {default!r}")


def run_text(connection: Connection, sql: str) -> None:
    """SQL without parameters or rows (SQLite's BEGIN), on the cursor as above."""
    if _watched(connection):
        connection.exec_driver_sql(sql)
    else:
        _run(connection, sql, (), lambda _cursor: None)


def _watched(connection: Connection) -> bool:
    # The engine's listeners (and Engine's, class-wide): where instrumentation and tests
    # put them. The connection's own joined dispatch cost eight times as much to ask.
    dispatch = connection.engine.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _run(
    connection: Connection,
    sql: str,
    arguments: Any,
    read: Callable[[Any], Any],
    many: bool = False,
) -> Any:
    proxied = connection.connection
    cursor = proxied.cursor()
    try:
        if many:
            cursor.executemany(sql, arguments)
        else:
            cursor.execute(sql, arguments)
        return read(cursor)
    except connection.dialect.loaded_dbapi.Error as error:
        dialect = connection.dialect
        lost = dialect.is_disconnect(error, proxied.dbapi_connection, cursor)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql,
            arguments,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=many,
        ) from error
    finally:
        cursor.close()
