"""How long each side of a pair has been silent: the input of nudges and the focus list.

Owns one query: for the open pairs in cohorts, when each participant last
wrote (any message they sent to the pair, whatever moderation decided) and
when the pair's programme started. Silence is counted from the later of the
two, so a pair that has not begun is not silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from relay.programme.plan import week_starts_at
from relay.store.models import Cohort, Message, Pair, Participant
from relay.store.states import PairStatus


@dataclass(frozen=True)
class Silence:
    pair_id: int
    token: str
    cohort: str
    status: PairStatus
    started_at: datetime
    mentor_id: int
    mentee_id: int
    mentor: Any  # (display name, email)
    mentee: Any
    mentor_last: datetime | None
    mentee_last: datetime | None

    def since(self, role: str) -> datetime:
        last = self.mentor_last if role == "mentor" else self.mentee_last
        return max(last, self.started_at) if last else self.started_at

    def partner_wrote_since(self, role: str) -> bool:
        mine = self.mentor_last if role == "mentor" else self.mentee_last
        theirs = self.mentee_last if role == "mentor" else self.mentor_last
        return theirs is not None and (mine is None or theirs > mine)

    @property
    def pair_since(self) -> datetime:
        return max(self.since("mentor"), self.since("mentee"))


def silences(
    session: Session,
    now: datetime,
    time_zone: str,
    send_hour: int,
    statuses: tuple[PairStatus, ...] = (PairStatus.ACTIVE,),
    cohort: str | None = None,
) -> list[Silence]:
    mentor, mentee = aliased(Participant), aliased(Participant)

    def last_from(column: Any) -> Any:
        return (
            select(func.max(Message.received_at))
            .where(Message.pair_id == Pair.id, Message.sender_id == column)
            .scalar_subquery()
        )

    query = (
        select(
            Pair.id,
            Pair.token,
            Cohort.name,
            Pair.status,
            Pair.started_on,
            Pair.mentor_id,
            Pair.mentee_id,
            mentor.display_name,
            mentor.email,
            mentee.display_name,
            mentee.email,
            last_from(Pair.mentor_id),
            last_from(Pair.mentee_id),
        )
        .join(Cohort, Cohort.id == Pair.cohort_id)
        .join(mentor, mentor.id == Pair.mentor_id)
        .join(mentee, mentee.id == Pair.mentee_id)
        .where(Pair.status.in_(statuses), Pair.started_on <= now.date())
        .order_by(Pair.id)
    )
    if cohort is not None:
        query = query.where(Cohort.name == cohort)
    found = []
    for row in session.execute(query):
        started_on: date | None = row[4]
        if started_on is None:
            continue
        started_at = week_starts_at(started_on, 1, time_zone, send_hour)
        if started_at > now:
            continue
        found.append(
            Silence(
                row[0],
                row[1],
                row[2],
                row[3],
                started_at,
                row[5],
                row[6],
                (row[7], row[8]),
                (row[9], row[10]),
                row[11],
                row[12],
            )
        )
    return found
