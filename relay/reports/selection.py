"""Which pairs a report covers: those of the cohort asked for, matched before the
period ends and not ended before it begins. Owns that one subquery, which every
table's query joins, so pairs, cohorts and moderation always agree."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.store.models import Pair


def selected_pairs(period: Period, cohort_id: int | None) -> Subquery:
    """Column: id."""
    query = select(Pair.id).where(
        Pair.created_at < period.until,
        or_(Pair.ended_at.is_(None), Pair.ended_at >= period.start),
    )
    if cohort_id is not None:
        query = query.where(Pair.cohort_id == cohort_id)
    return query.subquery()
