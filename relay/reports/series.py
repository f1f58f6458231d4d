"""The charts' data: weekly series and a distribution, each one GROUP BY in SQL.

Owns what the page draws: messages per week per cohort, active pairs per
week (a pair counts in week W when either side wrote in W or the week
before: the 14-day "active" of the tables, at week resolution), reply times
by band, and the mean check-in score per week per cohort. Weeks are
counted in SQL as numbers (relay.reports.sql.week_number) and named by
their Mondays (UTC, YYYY-MM-DD). One GROUP BY over the messages fills a
temporary table of messages per pair per week, which both weekly series
read (active pairs: one LEAD over it finds the weeks after which a pair
went quiet); the reply bands come from relay.reports.replies' histogram.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.replies import Histogram
from relay.reports.sql import EPOCH_MONDAY, Dialect, monday_of
from relay.store.models import Checkin, Cohort, Message, Pair

# Reply-time bands: upper bound in hours, label.
REPLY_BANDS = (
    (1, "< 1 h"),
    (6, "1–6 h"),
    (24, "6–24 h"),
    (72, "1–3 days"),
    (168, "3–7 days"),
    (336, "1–2 weeks"),
)
LONGEST_BAND = "> 2 weeks"

Series = dict[str, dict[str, float]]  # name -> week -> value


def chart_series(
    session: Session, dialect: Dialect, period: Period, selection: Subquery, replies: Histogram
) -> dict[str, Any]:
    table = _weeks_table()
    connection = session.connection()
    table.create(connection)
    try:
        week = dialect.week_number(Message.received_at)
        per_pair_week = (
            select(Message.pair_id, week, func.count())
            .where(
                Message.pair_id.in_(select(selection.c.id)),
                _in_period(Message.received_at, period),
            )
            .group_by(Message.pair_id, week)
        )
        session.execute(insert(table).from_select(["pair_id", "week", "messages"], per_pair_week))
        return {
            "messages_per_week": _messages_per_week(session, table),
            "active_pairs": _active_pairs(session, dialect, period, table),
            "reply_bands": _reply_bands(replies),
            "checkin_scores": _checkin_scores(session, dialect, period, selection),
        }
    finally:
        table.drop(connection)


def _weeks_table() -> Table:
    return Table(
        "report_weeks",
        MetaData(),
        Column("pair_id", Integer),
        Column("week", Integer),  # sql.Dialect.week_number
        Column("messages", Integer),
        prefixes=["TEMPORARY"],
    )


def _in_period(column: Any, period: Period) -> Any:
    return (column >= period.start) & (column < period.until)


def _messages_per_week(session: Session, weeks: Table) -> Series:
    statement = (
        select(Cohort.name, weeks.c.week, func.sum(weeks.c.messages))
        .select_from(weeks)
        .join(Pair, Pair.id == weeks.c.pair_id)
        .outerjoin(Cohort, Cohort.id == Pair.cohort_id)
        .group_by(Cohort.name, weeks.c.week)
    )
    found: Series = defaultdict(dict)
    for cohort, week, count in session.execute(statement):
        found[cohort or "(no cohort)"][monday_of(week)] = int(count)
    return dict(found)


def _active_pairs(
    session: Session, dialect: Dialect, period: Period, weeks: Table
) -> dict[str, int]:
    """Per week: pairs that wrote that week, plus pairs that wrote the week before but not then."""
    wrote = Counter(
        {
            int(week): int(n)
            for week, n in session.execute(
                select(weeks.c.week, func.count()).group_by(weeks.c.week)
            )
        }
    )
    following = (
        select(
            weeks.c.week,
            func.lead(weeks.c.week)
            .over(partition_by=weeks.c.pair_id, order_by=weeks.c.week)
            .label("next_week"),
        )
    ).subquery()
    gap_after = following.c.next_week.is_(None) | (following.c.next_week != following.c.week + 1)
    carried = Counter(
        {
            int(week) + 1: int(n)
            for week, n in session.execute(
                select(following.c.week, func.count()).where(gap_after).group_by(following.c.week)
            )
        }
    )
    last_week = ((period.until - timedelta(microseconds=1)).date() - EPOCH_MONDAY).days // 7
    active = wrote + carried
    return {monday_of(week): active[week] for week in sorted(active) if week <= last_week}


def _reply_bands(replies: Histogram) -> dict[str, dict[str, int]]:
    labels = [label for _, label in REPLY_BANDS] + [LONGEST_BAND]
    found = {side: dict.fromkeys(labels, 0) for side in ("mentor", "mentee")}
    for (_, by_mentor), counts in replies.items():
        side = found["mentor" if by_mentor else "mentee"]
        for tenths, count in counts.items():
            label = next((name for limit, name in REPLY_BANDS if tenths < limit * 10), LONGEST_BAND)
            side[label] += count
    return found


def _checkin_scores(
    session: Session, dialect: Dialect, period: Period, selection: Subquery
) -> Series:
    week = dialect.week_number(Checkin.sent_at)
    statement = (
        select(Cohort.name, week, func.avg(Checkin.score))
        .select_from(Checkin)
        .join(Pair, Pair.id == Checkin.pair_id)
        .outerjoin(Cohort, Cohort.id == Pair.cohort_id)
        .where(
            Checkin.pair_id.in_(select(selection.c.id)),
            Checkin.score.is_not(None),
            _in_period(Checkin.sent_at, period),
            Checkin.answered_at < period.until,
        )
        .group_by(Cohort.name, week)
    )
    found: Series = defaultdict(dict)
    for cohort, when, mean in session.execute(statement):
        found[cohort or "(no cohort)"][monday_of(when)] = round(float(mean), 2)
    return dict(found)
