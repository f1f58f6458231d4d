"""`relay schedule` and `relay checkins`: what will go out when, what went out, the answers.

Owns reading the programme's tables for people: every planned item of every
pair (with its state: sent, skipped, due, waiting, or not to be sent because
the pair is paused or ended), and the check-ins with their scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from relay.config import Config
from relay.mail.addresses import pair_address
from relay.programme.curricula import Curricula
from relay.programme.plan import Planner
from relay.store.models import Checkin, Cohort, Pair, Participant, ScheduledSend
from relay.store.states import PairStatus

LOW_SCORE = 2


@dataclass(frozen=True)
class ScheduleLine:
    due_at: datetime
    pair: str
    cohort: str
    to: str
    week: int
    kind: str
    item: str
    status: str  # sent, skipped, due, planned, paused, ended
    done_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "due": self.due_at.isoformat(),
            "pair": self.pair,
            "cohort": self.cohort,
            "to": self.to,
            "week": self.week,
            "kind": self.kind,
            "item": self.item,
            "status": self.status,
            "done": self.done_at.isoformat() if self.done_at else None,
        }


def schedule(
    session: Session,
    config: Config,
    curricula: Curricula,
    now: datetime,
    cohort: str | None = None,
    due_only: bool = False,
) -> list[ScheduleLine]:
    planner = Planner(config.programme.send_hour, config.programme.time_zone)
    query = (
        select(Pair)
        .join(Cohort, Cohort.id == Pair.cohort_id)
        .options(joinedload(Pair.mentor), joinedload(Pair.mentee), joinedload(Pair.cohort))
        .order_by(Pair.id)
    )
    if cohort is not None:
        query = query.where(Cohort.name == cohort)
    pairs = list(session.scalars(query))
    done: dict[tuple[int, str, int], ScheduledSend] = {
        (row.pair_id, row.item_key, row.participant_id): row
        for row in session.scalars(
            select(ScheduledSend).where(ScheduledSend.pair_id.in_([p.id for p in pairs]))
        )
    }
    lines = []
    for pair in pairs:
        assert pair.cohort is not None
        curriculum = curricula.get(config, pair.cohort.curriculum)
        if curriculum is None or pair.started_on is None or pair.weeks is None:
            continue
        planned = planner.plan(
            curriculum, pair.started_on, pair.weeks, pair.mentor.time_zone, pair.mentee.time_zone
        )
        for send in planned:
            who = pair.mentor if send.role != "mentee" else pair.mentee
            record = done.get((pair.id, send.key, who.id))
            if record is not None:
                status, done_at = record.status.value, record.done_at
            elif pair.status is PairStatus.ENDED:
                status, done_at = "ended", None
            elif pair.status is PairStatus.PAUSED:
                status, done_at = "paused", None
            else:
                status, done_at = ("due" if send.due_at <= now else "planned"), None
            if due_only and status != "due":
                continue
            lines.append(
                ScheduleLine(
                    send.due_at,
                    pair_address(pair.token, config.relay.domain),
                    pair.cohort.name,
                    send.role,
                    send.week,
                    send.kind.value,
                    send.template or send.key,
                    status,
                    done_at,
                )
            )
    return sorted(lines, key=lambda line: (line.due_at, line.pair, line.to))


@dataclass(frozen=True)
class CheckinLine:
    pair: str
    cohort: str
    role: str
    name: str
    week: int
    item: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None
    comment: str
    flagged: bool

    @property
    def shown_score(self) -> str:
        if self.answered_at is None:
            return "unanswered"
        return str(self.score) if self.score is not None else "no score"

    def to_json(self) -> dict[str, object]:
        return {
            "pair": self.pair,
            "cohort": self.cohort,
            "role": self.role,
            "name": self.name,
            "week": self.week,
            "item": self.item,
            "sent_at": self.sent_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "score": self.score,
            "comment": self.comment,
            "flagged": self.flagged,
        }


def checkins(
    session: Session, config: Config, cohort: str | None = None, low_only: bool = False
) -> list[CheckinLine]:
    query = (
        select(Checkin, Pair.token, Cohort.name, Participant.role, Participant.display_name)
        .join(Pair, Pair.id == Checkin.pair_id)
        .join(Participant, Participant.id == Checkin.participant_id)
        .outerjoin(Cohort, Cohort.id == Pair.cohort_id)
        .order_by(Checkin.sent_at, Checkin.pair_id, Checkin.participant_id)
    )
    if cohort is not None:
        query = query.where(Cohort.name == cohort)
    lines = []
    for row, token, cohort_name, role, name in session.execute(query):
        low = (row.score is not None and row.score <= LOW_SCORE) or row.flagged
        if low_only and not low:
            continue
        lines.append(
            CheckinLine(
                pair_address(token, config.relay.domain),
                cohort_name or "",
                role.value,
                name,
                row.week,
                row.item_key,
                row.sent_at,
                row.answered_at,
                row.score,
                row.comment or "",
                row.flagged,
            )
        )
    return lines
