"""Reply times: how long one side took to answer the other, one row per reply, in SQL.

A reply is a message whose previous message in the pair came from the other
side; its reply time runs from that previous message (the one it answers).
One window pass over the pair's messages in time order, which the index
ix_messages_pair_received gives without sorting.

The pass is the report's largest cost and is paid once: its rows (one per
reply, over a million at scale) go straight from the driver's cursor into
the per-pair medians (exact) and a histogram of reply times rounded to
0.1 h per cohort and side, from which cohort and whole-report medians (exact
to 0.1 h) and the chart's bands are read. No temporary table and no Row
objects: the driver's tuples become numpy arrays, sorted and counted there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.selection import selected_pairs
from relay.reports.sql import Dialect, allow_long_statements, driver_batches
from relay.store.models import Message, Pair

# More tenths of an hour than any reply time can have (10**12 h)
BUCKETS = 10**13
# (cohort_id, by_mentor) -> {tenths of an hour: replies}
Histogram = dict[tuple[int | None, int], dict[int, int]]


def _replies(dialect: Dialect, period: Period, selection: Subquery, every: bool) -> Select[Any]:
    """Columns: pair_id, sender_id, reply hours [, week_number].

    every=False: the replies of the period; True: every message of the period
    (hours NULL when it is not a reply) with its week, for the page's charts.
    """
    # Each message's time as the number both the hours and the week are computed
    # from, once per message (on SQLite a julianday(), the pass's largest cost).
    moment = dialect.moment(Message.received_at)
    # Ordered by received_at alone, so the index gives the order (ties: the index's).
    written = (
        select(
            Message.pair_id,
            Message.sender_id,
            Message.received_at,
            moment.label("moment"),
            func.lag(Message.sender_id)
            .over(partition_by=Message.pair_id, order_by=Message.received_at)
            .label("previous_sender"),
            func.lag(moment)
            .over(partition_by=Message.pair_id, order_by=Message.received_at)
            .label("previous_moment"),
        )
        .where(Message.pair_id.in_(select(selection.c.id)), Message.received_at < period.until)
        .subquery()
    )
    is_reply = written.c.previous_sender != written.c.sender_id
    hours = dialect.hours_between_moments(written.c.moment, written.c.previous_moment)
    columns: list[Any] = [written.c.pair_id, written.c.sender_id]
    if every:
        columns += [case((is_reply, hours)), dialect.week_of_moment(written.c.moment)]
    else:
        columns.append(hours)
    statement = select(*columns).where(written.c.received_at >= period.start)
    return statement if every else statement.where(is_reply)


# (pair_id, "mentor" | "mentee") -> that side's median reply time, in hours
PairMedians = dict[tuple[int, str], float]


@dataclass(frozen=True)
class Weekly:
    """The page's weekly counts, from every message of the period (week_number() weeks)."""

    messages: dict[tuple[int, int], int]  # (cohort id, -1 for none; week) -> messages
    active_pairs: dict[int, int]  # week -> pairs that wrote that week or the week before


ReplyFigures = tuple[PairMedians, Histogram, Weekly | None]


@dataclass(frozen=True)
class ReplyPass:
    """reply_figures() as the report's second process runs it (relay.reports.parallel):
    picklable, with its own session."""

    period: Period
    cohort_id: int | None
    with_weeks: bool

    def __call__(self, session: Session) -> ReplyFigures:
        dialect = Dialect(session.get_bind().dialect.name)
        allow_long_statements(session, dialect)
        selection = selected_pairs(self.period, self.cohort_id)
        return reply_figures(session, dialect, self.period, selection, self.with_weeks)


def reply_figures(
    session: Session,
    dialect: Dialect,
    period: Period,
    selection: Subquery,
    with_weeks: bool = False,
) -> ReplyFigures:
    """Per-pair medians (exact) and the cohort histogram, from ONE pass over the messages.

    with_weeks: also the weekly counts of the page's charts, from every
    message's pair, cohort and week (the pass reads them all anyway; the
    charts need no second pass, and only the counts leave the process).
    """
    width = 4 if with_weeks else 3
    # Every column as float64 (ids and weeks are far below 2**53: exact); NULL becomes NaN.
    batches = [
        np.array(rows, dtype=np.float64).reshape(-1, width)
        for rows in driver_batches(session, _replies(dialect, period, selection, with_weeks))
    ]
    table = np.concatenate(batches) if batches else np.empty((0, width))
    pair_ids, senders, hours = table[:, 0].astype(np.int64), table[:, 1], table[:, 2]
    # Each pair's mentor and cohort, looked up by position among the pairs' sorted ids.
    pairs = np.array(
        session.execute(
            select(Pair.id, Pair.mentor_id, func.coalesce(Pair.cohort_id, -1))
            .where(Pair.id.in_(select(selection.c.id)))
            .order_by(Pair.id)
        ).all(),
        dtype=np.int64,
    ).reshape(-1, 3)
    place = np.searchsorted(pairs[:, 0], pair_ids)
    by_mentor = (senders == pairs[place, 1]).astype(np.int64)
    cohorts = pairs[place, 2]  # -1: no cohort (ids are positive)
    weekly = None
    if with_weeks:
        weekly = _weekly(pair_ids, cohorts, table[:, 3].astype(np.int64))
        replies = ~np.isnan(hours)
        pair_ids, by_mentor, cohorts, hours = (
            pair_ids[replies],
            by_mentor[replies],
            cohorts[replies],
            hours[replies],
        )
    medians = _medians(pair_ids * 2 + by_mentor, hours)
    return medians, _histogram(cohorts, by_mentor, dialect.tenths(hours)), weekly


# More weeks than week_number() gives until the year 20,000: (x, week) pairs as one integer.
WEEKS = 1 << 20


def _weekly(pair_ids: Any, cohorts: Any, weeks: Any) -> Weekly:
    """Messages per cohort and week; pairs active per week (a pair counts in week W when
    it wrote in W or the week before: the tables' 14-day "active", by the week)."""
    keys, counts = counted((cohorts + 1) * WEEKS + weeks)
    messages = {
        (key // WEEKS - 1, key % WEEKS): count
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True)
    }
    wrote, _ = counted(pair_ids * WEEKS + weeks)
    # Each pair-week counts for its own week and the next; a pair once per week.
    active, _ = counted(np.concatenate((wrote, wrote + 1)))
    found, active_counts = counted(active % WEEKS)
    return Weekly(messages, dict(zip(found.tolist(), active_counts.tolist(), strict=True)))


def _medians(groups: Any, hours: Any) -> PairMedians:
    """Each group's median: the middle value, or the mean of the two middle ones."""
    if not len(groups):
        return {}
    order = np.lexsort((hours, groups))
    groups, hours = groups[order], hours[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, len(groups)])
    lower = hours[starts + (sizes + 1) // 2 - 1]
    upper = hours[starts + (sizes + 2) // 2 - 1]
    middle = np.where(sizes % 2 == 1, lower, (lower + upper) / 2)
    return {
        (int(group) // 2, "mentor" if group % 2 else "mentee"): float(value)
        for group, value in zip(groups[starts].tolist(), middle.tolist(), strict=True)
    }


def _histogram(cohorts: Any, by_mentor: Any, buckets: Any) -> Histogram:
    histogram: Histogram = {}
    if not len(buckets):
        return histogram
    # One integer per (cohort, side, bucket), so that counting is one sort of integers.
    side_keys = (cohorts + 1) * 2 + by_mentor
    keys, counts = counted(side_keys * BUCKETS + buckets)
    for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
        side_key, bucket = divmod(key, BUCKETS)
        cohort_id = side_key // 2 - 1
        side = (None if cohort_id == -1 else cohort_id, side_key % 2)
        histogram.setdefault(side, {})[bucket] = count
    return histogram


def counted(keys: Any) -> tuple[Any, Any]:
    """(the distinct integers, how often each occurs), smallest first.

    np.unique(return_counts=True) does the same, but took ten times as long
    here (numpy 2.x) as one sort and a comparison of neighbours.
    """
    ordered = np.sort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


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
