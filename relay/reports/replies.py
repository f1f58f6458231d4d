"""Reply times: how long one side took to answer the other, one row per reply, in SQL.

A reply is a message whose previous message in the pair came from the other
side; its reply time runs from that previous message (the one it answers).
One window pass over the pair's messages in time order, which the index
ix_messages_pair_received gives without sorting.

The rows are computed once per report into a temporary table (per
connection, dropped afterwards) that the per-pair medians, the cohort
figures and the chart read: the pass over every message is the report's
largest cost, and is paid once. Cohort and whole-report medians come from a
histogram of reply times rounded to 0.1 h (one GROUP BY, small enough to
read), so they are exact to 0.1 h; per-pair medians are exact. Both come
from one sorted read of the table (one sort, not two).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.sql import Dialect, filled_temporary_table
from relay.store.base import UtcDateTime
from relay.store.models import Message, Pair

# (cohort_id, by_mentor) -> {tenths of an hour: replies}
Histogram = dict[tuple[int | None, int], dict[int, int]]


def _reply_table() -> Table:
    return Table(
        "report_replies",
        MetaData(),
        Column("pair_id", Integer),
        Column("cohort_id", Integer),
        Column("by_mentor", Integer),  # 1: the mentor replied; 0: the mentee
        Column("received_at", UtcDateTime),
        Column("hours", Float),
        prefixes=["TEMPORARY"],
    )


@contextmanager
def reply_times(
    session: Session, dialect: Dialect, period: Period, selection: Subquery
) -> Iterator[Table]:
    """A temporary table of the replies in the period, for the length of the block."""
    query = _replies(dialect, period, selection)
    with filled_temporary_table(session, _reply_table(), query) as table:
        yield table


def _replies(dialect: Dialect, period: Period, selection: Subquery) -> Select[Any]:
    # Ordered by received_at alone, so the index gives the order (ties: the index's).
    written = (
        select(
            Message.pair_id,
            Message.sender_id,
            Message.received_at,
            func.lag(Message.sender_id)
            .over(partition_by=Message.pair_id, order_by=Message.received_at)
            .label("previous_sender"),
            func.lag(Message.received_at)
            .over(partition_by=Message.pair_id, order_by=Message.received_at)
            .label("previous_at"),
        )
        .where(Message.pair_id.in_(select(selection.c.id)), Message.received_at < period.until)
        .subquery()
    )
    return (
        select(
            written.c.pair_id,
            Pair.cohort_id,
            case((written.c.sender_id == Pair.mentor_id, 1), else_=0),
            written.c.received_at,
            dialect.hours_between(written.c.received_at, written.c.previous_at),
        )
        .join(Pair, Pair.id == written.c.pair_id)
        .where(
            written.c.previous_sender != written.c.sender_id,
            written.c.received_at >= period.start,
        )
    )


# (pair_id, "mentor" | "mentee") -> that side's median reply time, in hours
PairMedians = dict[tuple[int, str], float]


def reply_figures(
    session: Session, dialect: Dialect, replies: Table
) -> tuple[PairMedians, Histogram]:
    """Per-pair medians (exact) and the cohort histogram, from ONE ordered read of the replies.

    Two GROUP BYs (the medians' window and the histogram) meant two sorts of
    every reply; here the database sorts once and Python walks the rows,
    through the driver's cursor (over a million rows: no Row objects).
    """
    tenths = cast(func.round(replies.c.hours * 10), Integer)
    statement = (
        select(replies.c.pair_id, replies.c.by_mentor, replies.c.cohort_id, replies.c.hours, tenths)
        .where(replies.c.hours.is_not(None))
        .order_by(replies.c.pair_id, replies.c.by_mentor, replies.c.hours)
    )
    # No parameters but the literal 10: nothing from outside goes into the SQL text.
    sql = str(statement.compile(bind=session.connection(), compile_kwargs={"literal_binds": True}))
    medians: PairMedians = {}
    histogram: Histogram = {}
    group: tuple[int, int] | None = None
    values: list[float] = []
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(10_000):
            for pair_id, by_mentor, cohort_id, hours, bucket in rows:
                if (pair_id, by_mentor) != group:
                    _store_median(medians, group, values)
                    group, values = (pair_id, by_mentor), []
                    counts = histogram.setdefault((cohort_id, int(by_mentor)), {})
                values.append(hours)
                counts[bucket] = counts.get(bucket, 0) + 1
    finally:
        cursor.close()
    _store_median(medians, group, values)
    return medians, histogram


def _store_median(medians: PairMedians, group: tuple[int, int] | None, values: list[float]) -> None:
    if group is None or not values:
        return
    n = len(values)
    middle = values[(n + 1) // 2 - 1 : (n + 2) // 2]
    medians[(group[0], "mentor" if group[1] else "mentee")] = sum(middle) / len(middle)


def merged(parts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for part in parts:
        for bucket, count in part.items():
            total[bucket] = total.get(bucket, 0) + count
    return total


def histogram_median(counts: Mapping[int, int]) -> float | None:
    """The median of a histogram of tenths of an hour, in hours."""
    n = sum(counts.values())
    if not n:
        return None
    wanted = [(n + 1) // 2, (n + 2) // 2]  # 1-based ranks of the middle one or two
    found: list[int] = []
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        while wanted and wanted[0] <= seen:
            found.append(bucket)
            wanted.pop(0)
    return sum(found) / len(found) / 10
