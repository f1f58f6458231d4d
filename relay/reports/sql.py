"""What the report's queries need that SQLite and PostgreSQL spell differently.

Owns the temporary tables several figures read, time arithmetic (hours and
days between two timestamps, a timestamp's week as a number, cheap to
compute over every message) and order
statistics (median, nearest-rank percentile) built from window functions,
which both backends run: SQLite has no percentile function, so a
percentile is the row whose rank is the wanted one within its group.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Table,
    and_,
    cast,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import DateTime

REPORT_STATEMENT_TIMEOUT = "10min"
EPOCH_MONDAY = date(1970, 1, 5)
EPOCH_MONDAY_JULIAN = 2440591.5  # julianday('1970-01-05')
EPOCH_MONDAY_SECONDS = 4 * 86400  # 1970-01-05 in Unix time


def allow_long_statements(session: Session, dialect: Dialect) -> None:
    if dialect.postgres:
        # [database] statement_timeout bounds the daemon's statements; a report over a
        # large programme is one coordinator's batch, and may take longer.
        session.execute(text(f"SET LOCAL statement_timeout = '{REPORT_STATEMENT_TIMEOUT}'"))


@contextmanager
def filled_temporary_table(session: Session, table: Table, query: Select[Any]) -> Iterator[Table]:
    """The table created and filled from the query, for the length of the block, then dropped.

    Dropped only when the block ends well: if it raises, the transaction's rollback takes
    the table away (DDL is transactional on both backends), while a DROP on a connection
    the error (or Ctrl-C inside a statement) invalidated would fail and hide the error.
    """
    connection = session.connection()
    table.create(connection)
    session.execute(insert(table).from_select([c.name for c in table.columns], query))
    yield table
    table.drop(connection)


def driver_batches(session: Session, statement: Select[Any]) -> Iterator[Sequence[Any]]:
    """The statement's rows as the driver gives them (tuples, in batches), not as Row objects.

    For the one query whose rows are counted in the millions: SQLAlchemy
    still compiles the statement and binds its parameters (types and all);
    only the per-row result processing, which would double its cost, is
    skipped. The columns must need no conversion (numbers and NULLs).
    """
    result = session.connection().execute(statement)
    try:
        while rows := result.cursor.fetchmany(10_000):
            yield rows
    finally:
        result.close()


class Dialect:
    """Expressions for one database backend ("sqlite" or "postgresql")."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    def hours_between(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        return self.days_between(later, earlier) * 24.0

    def days_between(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        if self.postgres:
            seconds = func.extract("epoch", self._timestamp(later) - self._timestamp(earlier))
            return cast(seconds, Float) / 86400.0
        return func.julianday(later) - func.julianday(earlier)

    def _timestamp(self, value: Any) -> Any:
        # A DATE column becomes midnight UTC, whatever the session's time zone.
        if isinstance(getattr(value, "type", None), DateTime):
            return value
        return func.timezone("UTC", cast(value, DateTime(timezone=False)))

    def tenths(self, hours: Any) -> Any:
        """round(hours * 10) of a numpy array, as the database's own round() does it (hours >= 0).

        SQLite rounds halves away from zero (floor(x + 0.5)); PostgreSQL's
        round(double precision) halves to even, as numpy's rint does.
        """
        scaled = hours * 10
        rounded = np.rint(scaled) if self.postgres else np.floor(scaled + 0.5)
        return rounded.astype(np.int64)

    def moment(self, timestamp: Any) -> ColumnElement[Any]:
        """A timestamp as what hours_between_moments() and week_of_moment() take.

        SQLite: its Julian day (the text is parsed once); PostgreSQL: itself.
        """
        return timestamp if self.postgres else func.julianday(timestamp)

    def hours_between_moments(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        """hours_between() of two moment()s: the same value, to the last bit."""
        if self.postgres:
            return self.hours_between(later, earlier)
        hours: ColumnElement[Any] = (later - earlier) * 24.0
        return hours

    def week_of_moment(self, moment: Any) -> ColumnElement[int]:
        """week_number() of a moment(): the same value."""
        if self.postgres:
            return self.week_number(moment)
        return cast((moment - EPOCH_MONDAY_JULIAN) / 7, Integer)

    def week_number(self, moment: Any) -> ColumnElement[int]:
        """Whole weeks from Monday 1970-01-05 (UTC) to a timestamp: arithmetic, no formatting."""
        if self.postgres:
            seconds = func.extract("epoch", moment) - EPOCH_MONDAY_SECONDS
            return cast(func.floor(seconds / 604800), Integer)
        return cast((func.julianday(moment) - EPOCH_MONDAY_JULIAN) / 7, Integer)


def monday_of(week: int) -> str:
    """The Monday (YYYY-MM-DD) that starts a week_number() week."""
    return (EPOCH_MONDAY + timedelta(weeks=week)).isoformat()


def median(source: FromClause, value: str, groups: tuple[str, ...]) -> Select[Any]:
    """(groups..., median of value) per group: the mean of the one or two middle rows."""
    ranked = _ranked(source, value, groups)
    middle = and_(
        ranked.c.rank >= (ranked.c.n + 1) // 2,
        ranked.c.rank <= (ranked.c.n + 2) // 2,
    )
    keys = [ranked.c[name] for name in groups]
    return select(*keys, func.avg(ranked.c.value)).where(middle).group_by(*keys)


def percentile(
    source: FromClause, value: str, groups: tuple[str, ...], percent: int
) -> Select[Any]:
    """(groups..., the nearest-rank percentile of value): the ceil(p/100 * n)-th smallest."""
    ranked = _ranked(source, value, groups)
    wanted = (ranked.c.n * percent + 99) // 100  # the ceiling
    keys = [ranked.c[name] for name in groups]
    return select(*keys, ranked.c.value).where(ranked.c.rank == wanted)


def _ranked(source: FromClause, value: str, groups: tuple[str, ...]) -> FromClause:
    keys = [source.c[name] for name in groups]
    column = source.c[value]
    return (
        select(
            *keys,
            column.label("value"),
            func.row_number().over(partition_by=keys or None, order_by=column).label("rank"),
            # The same window (order and all), so both come out of one sort.
            func.count()
            .over(partition_by=keys or None, order_by=column, rows=(None, None))
            .label("n"),
        )
        .where(column.is_not(None))
        .subquery()
    )
