"""The per-cohort table: how each cohort is doing, and the same figures for all pairs.

Owns the cohort figures (docs/reports.md): pairs by state, early endings
(before the pair's weeks were up) by reason and by who ended them, the
median match length of ended pairs and check-in scores, as GROUP BY queries
keyed by cohort (or over the whole report). Message and prompt totals and
active pairs (either side wrote within 14 days of the report's moment) are
sums of the per-pair rows (relay.reports.pairs); reply-time medians come
from relay.reports.replies' histogram.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import ACTIVE_WITHIN, Period
from relay.reports.replies import Histogram, histogram_median, merged
from relay.reports.sql import Dialect, median
from relay.store.models import Checkin, Cohort, Pair
from relay.store.states import PairStatus

COMPLETED = "completed"
ALL = -1  # the key of the whole report's row


@dataclass(frozen=True)
class CohortFigures:
    """What cohort_rows() reads from the database, read before the reply times are in."""

    names: dict[int, str]
    found: dict[int, dict[str, Any]]  # cohort id (ALL: the whole report) -> figures


def read_cohort_figures(
    session: Session, dialect: Dialect, period: Period, selection: Subquery
) -> CohortFigures:
    names = {cohort_id: name for cohort_id, name in session.execute(select(Cohort.id, Cohort.name))}
    found = _figures(session, dialect, period, selection, grouped=True)
    whole = _figures(session, dialect, period, selection, grouped=False)
    # The whole report's scores are the cohorts' summed: no second pass over check-ins.
    for figures in found.values():
        for score, count in figures["scores"].items():
            whole[ALL]["scores"][score] = whole[ALL]["scores"].get(score, 0) + count
    return CohortFigures(names, found | whole)


def cohort_rows(
    read: CohortFigures, replies: Histogram, pair_rows: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one row per cohort, the row for every pair in the report)."""
    names, found = read.names, read.found
    cohort_of = {name: cohort_id for cohort_id, name in names.items()}
    totals: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in pair_rows:
        for key in (cohort_of.get(row["cohort"]), ALL):
            into = totals[key]
            into["messages"] += row["mentor_messages"] + row["mentee_messages"]
            into["pair_days"] += row["days_in_period"]
            into["prompts"] += row["prompts"]
            into["prompts_answered"] += row["prompts_answered"]
            into["active"] += _active(row)
    medians = {}
    for key in found:
        parts = replies.values() if key == ALL else [c for (k, _), c in replies.items() if k == key]
        medians[key] = histogram_median(merged(parts))
    cohorts = [
        _finish(names.get(key, ""), figures | {"median_reply_hours": medians[key]}, totals[key])
        for key, figures in sorted(found.items(), key=lambda item: names.get(item[0], ""))
        if key != ALL
    ]
    return cohorts, _finish(None, found[ALL] | {"median_reply_hours": medians[ALL]}, totals[ALL])


def _active(row: dict[str, Any]) -> int:
    """1 if the pair is open and either side wrote within ACTIVE_WITHIN of the moment."""
    silent = [row[f"{side}_days_silent"] for side in ("mentor", "mentee")]
    recent = [days for days in silent if days is not None]
    limit = ACTIVE_WITHIN.total_seconds() / 86400
    return int(row["state"] != "ended" and bool(recent) and min(recent) <= limit)


def _empty() -> dict[str, Any]:
    return {"pairs": 0, "by_reason": {}, "by_who": {}, "scores": {}}


def _finish(name: str | None, figures: dict[str, Any], totals: dict[str, float]) -> dict[str, Any]:
    scores = {str(score): figures["scores"].get(score, 0) for score in range(1, 6)}
    answered = sum(scores.values())
    mean = sum(int(s) * n for s, n in scores.items()) / answered if answered else None
    prompts = int(totals.get("prompts", 0))
    prompts_answered = int(totals.get("prompts_answered", 0))
    pair_days = totals.get("pair_days", 0.0)
    row: dict[str, Any] = {} if name is None else {"cohort": name}
    row |= {
        "pairs": figures["pairs"],
        "active": int(totals.get("active", 0)),
        "paused": figures.get("paused", 0),
        "ended_early": figures.get("ended_early", 0),
        "ended_early_by_reason": dict(sorted(figures["by_reason"].items())),
        "ended_early_by_who": dict(sorted(figures["by_who"].items())),
        "completed": figures.get("completed", 0),
        "median_match_days": _round(figures.get("median_match_days")),
        "messages": int(totals.get("messages", 0)),
        "messages_per_pair_per_month": (
            round(totals["messages"] * 30 / pair_days, 2) if pair_days else None
        ),
        "median_reply_hours": _round(figures.get("median_reply_hours")),
        "checkins_scored": answered,
        "checkin_mean": round(mean, 2) if mean is not None else None,
        "checkin_scores": scores,
        "prompts": prompts,
        "prompts_answered": prompts_answered,
        "prompts_answered_pct": round(100 * prompts_answered / prompts, 1) if prompts else None,
    }
    return row


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _figures(
    session: Session, dialect: Dialect, period: Period, selection: Subquery, grouped: bool
) -> dict[Any, dict[str, Any]]:
    # The whole report is one group: a constant key, and no GROUP BY (a constant there
    # would be read as a column position).
    key: Any = Pair.cohort_id if grouped else literal_column(str(ALL))
    by_key = [key] if grouped else []
    chosen = Pair.id.in_(select(selection.c.id))
    found: dict[Any, dict[str, Any]] = defaultdict(_empty)
    ended = (Pair.status == PairStatus.ENDED) & (Pair.ended_at < period.until)
    early = _ended_early(dialect, ended)
    states = {
        "paused": Pair.status == PairStatus.PAUSED,
        "ended_early": early,
        "completed": ended & (Pair.ended_reason == COMPLETED),
    }
    counts = (
        select(
            key.label("key"),
            func.count().label("pairs"),
            *(func.sum(case((test, 1), else_=0)).label(name) for name, test in states.items()),
        )
        .where(chosen)
        .group_by(*by_key)
    )
    for row in session.execute(counts):
        figures = dict(row._mapping)
        found[figures.pop("key")] |= {name: int(value or 0) for name, value in figures.items()}
    for column, into in ((Pair.ended_reason, "by_reason"), (Pair.ended_by, "by_who")):
        per_value = select(key, column, func.count()).where(chosen, early).group_by(*by_key, column)
        for group, value, count in session.execute(per_value):
            found[group][into][value or "unknown"] = int(count)
    lengths = (
        select(key.label("key"), dialect.days_between(Pair.ended_at, Pair.created_at).label("days"))
        .where(chosen, ended)
        .subquery()
    )
    for group, value in session.execute(median(lengths, "days", ("key",))):
        found[group]["median_match_days"] = value
    if not grouped:
        return found  # the scores: summed from the groups' by the caller
    scores = (
        select(key, Checkin.score, func.count())
        .join(Pair, Pair.id == Checkin.pair_id)
        .where(
            Checkin.pair_id.in_(select(selection.c.id)),
            Checkin.score.is_not(None),
            Checkin.answered_at >= period.start,
            Checkin.answered_at < period.until,
        )
        .group_by(*by_key, Checkin.score)
    )
    for group, score, count in session.execute(scores):
        found[group]["scores"][int(score)] = int(count)
    return found


def _ended_early(dialect: Dialect, ended: ColumnElement[bool]) -> ColumnElement[bool]:
    """Ended for another reason than completion, before the pair's weeks were up."""
    before_the_end = (
        Pair.started_on.is_(None)
        | Pair.weeks.is_(None)
        | (dialect.days_between(Pair.ended_at, Pair.started_on) < Pair.weeks * 7)
    )
    return and_(ended, func.coalesce(Pair.ended_reason, "") != COMPLETED, before_the_end)
