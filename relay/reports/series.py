"""The charts' data: weekly series and a distribution.

Owns what the page draws: messages per week per cohort, active pairs per
week (a pair counts in week W when either side wrote in W or the week
before: the 14-day "active" of the tables, at week resolution), reply times
by band, and the mean check-in score per week per cohort. Weeks are
counted in SQL as numbers (relay.reports.sql.week_number) and named by
their Mondays (UTC, YYYY-MM-DD). The messages' weeks come from the reply
pass (relay.reports.replies reads every message of the period once, and
hands over each one's pair, cohort and week): both weekly series are
counted from those arrays with numpy, without a second pass over the
messages; the reply bands come from the same pass's histogram, the
check-in scores from one GROUP BY.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.replies import Histogram, Written, counted
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
# More weeks than week_number() gives until the year 20,000: (x, week) pairs as one integer.
WEEKS = 1 << 20


def chart_series(
    session: Session,
    dialect: Dialect,
    period: Period,
    selection: Subquery,
    replies: Histogram,
    written: Written,
) -> dict[str, Any]:
    """written: every message of the period (relay.reports.replies' pass)."""
    return {
        "messages_per_week": _messages_per_week(session, written),
        "active_pairs": _active_pairs(period, written),
        "reply_bands": _reply_bands(replies),
        "checkin_scores": _checkin_scores(session, dialect, period, selection),
    }


def _messages_per_week(session: Session, written: Written) -> Series:
    names = {cohort_id: name for cohort_id, name in session.execute(select(Cohort.id, Cohort.name))}
    found: Series = defaultdict(dict)
    # One integer per (cohort, week): counting is one sort of integers.
    keys, counts = counted((written.cohorts + 1) * WEEKS + written.weeks)
    for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
        cohort_key, week = divmod(key, WEEKS)
        name = names.get(cohort_key - 1) or "(no cohort)"
        found[name][monday_of(week)] = count
    return dict(found)


def _active_pairs(period: Period, written: Written) -> dict[str, int]:
    """Per week: the pairs that wrote that week or the week before."""
    wrote, _ = counted(written.pair_ids * WEEKS + written.weeks)
    # Each pair-week counts for its own week and the next; a pair once per week.
    active, _ = counted(np.concatenate((wrote, wrote + 1)))
    weeks, counts = counted(active % WEEKS)
    last_week = ((period.until - timedelta(microseconds=1)).date() - EPOCH_MONDAY).days // 7
    return {
        monday_of(week): count
        for week, count in zip(weeks.tolist(), counts.tolist(), strict=True)
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
