"""Cohorts: pairs that run one curriculum for a number of weeks from a start date.

Owns creating a cohort (its curriculum checked against its weeks first),
listing them, and putting a pair in one. A pair's own week 1 is the
cohort's start, or the day it joins if the cohort has already begun: a late
joiner runs the whole curriculum from its own start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.config import Config
from relay.errors import ConflictError, NotFoundError
from relay.mail.addresses import pair_address
from relay.programme.curricula import default_folder
from relay.programme.curriculum import load_curriculum
from relay.programme.ending import started_on_for
from relay.programme.limits import MAX_WEEKS
from relay.programme.plan import current_week
from relay.store.models import Cohort, Pair
from relay.store.states import PairStatus


def create_cohort(
    session: Session, config: Config, name: str, start: date, weeks: int, curriculum: str
) -> Cohort:
    name = name.strip()
    if not name:
        raise ConflictError("a cohort needs a name")
    if not 1 <= weeks <= MAX_WEEKS:
        raise ConflictError(f"--weeks must be 1 to {MAX_WEEKS}")
    folder = Path(curriculum).expanduser().resolve() if curriculum else default_folder(config)
    load_curriculum(folder).check_weeks(weeks)
    if session.scalar(select(Cohort.id).where(Cohort.name == name)) is not None:
        raise ConflictError(f"there is already a cohort called {name!r}")
    cohort = Cohort(
        name=name, start_on=start, weeks=weeks, curriculum=str(folder) if curriculum else ""
    )
    session.add(cohort)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"there is already a cohort called {name!r}") from None
    return cohort


def find_cohort(session: Session, name: str) -> Cohort:
    cohort = session.scalar(select(Cohort).where(Cohort.name == name))
    if cohort is None:
        raise NotFoundError(f"no cohort called {name!r}")
    return cohort


def join(pair: Pair, cohort: Cohort, today: date, start: date | None, domain: str) -> None:
    if pair.status is PairStatus.ENDED:
        raise ConflictError(f"{pair_address(pair.token, domain)} has ended")
    if pair.cohort_id is not None and pair.cohort_id != cohort.id:
        raise ConflictError(f"{pair_address(pair.token, domain)} is already in another cohort")
    if pair.cohort_id == cohort.id:
        raise ConflictError(f"{pair_address(pair.token, domain)} is already in {cohort.name}")
    pair.cohort_id = cohort.id
    pair.started_on = started_on_for(cohort.start_on, today, start)
    pair.weeks = cohort.weeks
    # From the day before (the earliest time zone is 14 hours ahead of UTC): the first
    # tick after that plans the pair's items and sets the real time of the next one.
    pair.next_item_at = datetime.combine(pair.started_on - timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True)
class CohortSummary:
    cohort: Cohort
    pairs: dict[str, int]  # status -> count
    current_week: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.cohort.name,
            "start": self.cohort.start_on.isoformat(),
            "weeks": self.cohort.weeks,
            "curriculum": self.cohort.curriculum or "(default)",
            "current_week": self.current_week,
            "pairs": self.pairs,
        }


def summaries(session: Session, today: date) -> list[CohortSummary]:
    counts: dict[int, dict[str, int]] = {}
    for cohort_id, status, count in session.execute(
        select(Pair.cohort_id, Pair.status, func.count(Pair.id))
        .where(Pair.cohort_id.is_not(None))
        .group_by(Pair.cohort_id, Pair.status)
    ):
        if cohort_id is not None:
            counts.setdefault(cohort_id, {})[str(status)] = count
    return [
        CohortSummary(cohort, counts.get(cohort.id, {}), current_week(cohort.start_on, today))
        for cohort in session.scalars(select(Cohort).order_by(Cohort.start_on, Cohort.name))
    ]


def pairs_of(session: Session, cohort: Cohort) -> list[Pair]:
    return list(session.scalars(select(Pair).where(Pair.cohort_id == cohort.id).order_by(Pair.id)))
