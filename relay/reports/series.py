"""The charts' data: weekly series and a distribution.

Owns what the page draws: messages per week per cohort, active pairs per
week (a pair counts in week W when either side wrote in W or the week
before: the 14-day "active" of the tables, at week resolution), reply times
by band, and the mean check-in score per week per cohort. Weeks are
counted in SQL as numbers (relay.reports.sql.week_number) and named by
their Mondays (UTC, YYYY-MM-DD). Both weekly series of messages are
counted by the reply pass (relay.reports.replies reads every message of
the period once, in the report's second process): no second pass over the
messages; the reply bands come from the same pass's histogram, the
check-in scores from one GROUP BY (read before the reply pass is waited
for: checkin_scores()).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.replies import Histogram, Weekly
from relay.reports.sql import EPOCH_MONDAY, Dialect, monday_of
from relay.store.models import Checkin, Cohort, Pair

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
    names: Mapping[int, str], period: Period, replies: Histogram, weekly: Weekly, checkins: Series
) -> dict[str, Any]:
    """names: cohort id -> name; weekly: the reply pass's counts; checkins: checkin_scores()."""
    return {
        "messages_per_week": _messages_per_week(names, weekly),
        "active_pairs": _active_pairs(period, weekly),
        "reply_bands": _reply_bands(replies),
        "checkin_scores": checkins,
    }


def _messages_per_week(names: Mapping[int, str], weekly: Weekly) -> Series:
    found: Series = defaultdict(dict)
    for (cohort_id, week), count in sorted(weekly.messages.items()):
        found[names.get(cohort_id) or "(no cohort)"][monday_of(week)] = count
    return dict(found)


def _active_pairs(period: Period, weekly: Weekly) -> dict[str, int]:
    """Per week: the pairs that wrote that week or the week before."""
    last_week = ((period.until - timedelta(microseconds=1)).date() - EPOCH_MONDAY).days // 7
    return {
        monday_of(week): count
        for week, count in sorted(weekly.active_pairs.items())
        if week <= last_week
    }


def _in_period(column: Any, period: Period) -> Any:
    return (column >= period.start) & (column < period.until)


def _reply_bands(replies: Histogram) -> dict[str, dict[str, int]]:
    labels = [label for _, label in REPLY_BANDS] + [LONGEST_BAND]
    found = {side: dict.fromkeys(labels, 0) for side in ("mentor", "mentee")}
    for (_, by_mentor), counts in replies.items():
        side = found["mentor" if by_mentor else "mentee"]
        for tenths, count in counts.items():
            label = next((name for limit, name in REPLY_BANDS if tenths < limit * 10), LONGEST_BAND)
            side[label] += count
    return found


def checkin_scores(
    session: Session, dialect: Dialect, period: Period, selection: Subquery
) -> Series:
    """The mean check-in score per cohort and week."""
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
