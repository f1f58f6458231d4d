"""The moderation table: what was held in the period and what moderators did with it.

Owns the moderation figures (docs/reports.md): messages held on arrival in
the period and their outcome (approved, approved with redaction, rejected,
discarded, or still waiting at the report's moment), the median and 90th
percentile time from hold to decision, what waits and since when (all read
from relay.reports.held's table), and per rule how many holds carried its
hit and what share of the decided ones moderators approved unchanged. A
rule whose decided holds are mostly approved unchanged is "too eager": the
report says so. The rule names come
out of the stored hits (JSON) with the database's own JSON functions.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import JSON, Table, cast, func, select, true
from sqlalchemy.orm import Session

from relay.reports.period import Period
from relay.reports.sql import Dialect, median, percentile

OUTCOMES = ("approved", "approved_redacted", "rejected", "discarded", "waiting")
# A rule is too eager when at least this share of its decided holds went out unchanged...
TOO_EAGER_SHARE = 0.8
# ... over at least this many decisions (fewer say nothing).
TOO_EAGER_MIN = 5


def moderation_figures(
    session: Session,
    dialect: Dialect,
    period: Period,
    held: Table,
    accepting_rules: Collection[str],
) -> dict[str, Any]:
    """``held``: relay.reports.held's table of the period's held messages."""
    totals = dict.fromkeys(OUTCOMES, 0)
    for outcome, count in session.execute(
        select(held.c.outcome, func.count()).group_by(held.c.outcome)
    ):
        totals[outcome] = int(count)
    decided = select(held.c.hours).where(held.c.outcome != "waiting").subquery()
    middle = session.execute(median(decided, "hours", ())).scalar()
    p90 = session.execute(percentile(decided, "hours", (), 90)).scalar()
    oldest = session.execute(
        select(func.min(held.c.received_at)).where(held.c.outcome == "waiting")
    ).scalar()
    return {
        "held": sum(totals.values()),
        **totals,
        "median_decision_hours": _round(middle),
        "p90_decision_hours": _round(p90),
        "oldest_waiting_since": oldest.isoformat() if oldest else None,
        "oldest_waiting_hours": (
            _round((period.as_of - oldest).total_seconds() / 3600) if oldest else None
        ),
        "rules": _per_rule(session, dialect, held, accepting_rules),
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _per_rule(
    session: Session, dialect: Dialect, held: Table, accepting_rules: Collection[str]
) -> list[dict[str, Any]]:
    rule: Any
    if dialect.postgres:
        each = func.json_array_elements(cast(held.c.hits, JSON)).table_valued("value").lateral()
        rule = each.c.value.op("->>")("rule")
    else:
        each = func.json_each(held.c.hits).table_valued("value")
        rule = func.json_extract(each.c.value, "$.rule")
    hit = (
        select(held.c.id, held.c.outcome, rule.label("rule"))
        .select_from(held.join(each, true()))
        .distinct()
        .subquery()
    )
    counts: dict[str, dict[str, int]] = {}
    for name, outcome, count in session.execute(
        select(hit.c.rule, hit.c.outcome, func.count()).group_by(hit.c.rule, hit.c.outcome)
    ):
        if name not in accepting_rules:  # their hits did not hold anything
            counts.setdefault(name, {each: 0 for each in OUTCOMES})[outcome] = int(count)
    rows = []
    for name, outcomes in sorted(
        counts.items(), key=lambda item: (-sum(item[1].values()), item[0])
    ):
        decided = sum(outcomes.values()) - outcomes["waiting"]
        share = outcomes["approved"] / decided if decided else None
        eager = share is not None and decided >= TOO_EAGER_MIN and share >= TOO_EAGER_SHARE
        rows.append(
            {
                "rule": name,
                "held": sum(outcomes.values()),
                **outcomes,
                "approved_unchanged_share": round(share, 3) if share is not None else None,
                "too_eager": eager,
            }
        )
    return rows
