"""The per-pair table: how each pair is doing, one row per pair.

Owns the figures a coordinator reads per pair (docs/reports.md lists them):
one GROUP BY over the pair's messages per sender (first and last message,
count in the period), held (relay.reports.held) and rejected counts, the
median reply times (relay.reports.replies), prompts answered
(relay.reports.prompts, read once with the focus list's
prompts) and each side's latest check-in score; Python only
joins those per-pair rows. Names are display names; real addresses only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import Subquery

from relay.mail.addresses import pair_address
from relay.reports.period import Period
from relay.reports.prompts import PairPrompts
from relay.reports.replies import PairMedians
from relay.reports.sql import Dialect
from relay.store.models import Checkin, Cohort, Message, Pair, Participant
from relay.store.states import MessageStatus


@dataclass(frozen=True)
class PairQuery:
    session: Session
    dialect: Dialect
    period: Period
    selection: Subquery
    held: Table
    domain: str
    with_addresses: bool = False


def days(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() / 86400, 1)


def one_decimal(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def pair_rows(
    query: PairQuery, stats: MessageStats, prompts: Mapping[int, PairPrompts]
) -> list[dict[str, Any]]:
    """One row per selected pair, its median reply times still None (add_reply_medians).

    stats: message_stats(); prompts: relay.reports.prompts.pair_prompts().
    """
    period = query.period
    held, rejected = _moderated(query)
    checkins = _latest_scores(query)
    mentor, mentee = aliased(Participant), aliased(Participant)
    base = (
        select(
            Pair.id,
            Pair.token,
            Pair.status,
            Pair.ended_reason,
            Pair.ended_by,
            Pair.created_at,
            Pair.ended_at,
            Pair.mentor_id,
            Pair.mentee_id,
            Cohort.name.label("cohort"),
            mentor.display_name.label("mentor"),
            mentor.email.label("mentor_address"),
            mentee.display_name.label("mentee"),
            mentee.email.label("mentee_address"),
        )
        .join(mentor, mentor.id == Pair.mentor_id)
        .join(mentee, mentee.id == Pair.mentee_id)
        .outerjoin(Cohort, Cohort.id == Pair.cohort_id)
        .where(Pair.id.in_(select(query.selection.c.id)))
        .order_by(Cohort.name, Pair.id)
    )
    rows = []
    as_of, until, start = period.as_of, period.until, period.start
    nothing = SideFigures(None, None, 0, as_of)
    for pair in query.session.connection().execute(base):
        found = stats.get(pair.id, {})
        from_mentor = found.get(pair.mentor_id, nothing)
        from_mentee = found.get(pair.mentee_id, nothing)
        pair_prompts = prompts.get(pair.id)
        sent, answered = (pair_prompts.sent, pair_prompts.answered) if pair_prompts else (0, 0)
        ended = pair.ended_at if pair.ended_at and pair.ended_at < until else None
        open_from = max(pair.created_at, start)
        span = max(((ended or until) - open_from).total_seconds() / 86400, 1.0)
        total = from_mentor.count + from_mentee.count
        row: dict[str, Any] = {
            "id": pair.id,
            "address": pair_address(pair.token, query.domain),
            "cohort": pair.cohort or "",
            "mentor": pair.mentor,
            "mentee": pair.mentee,
        }
        if query.with_addresses:
            row |= {"mentor_address": pair.mentor_address, "mentee_address": pair.mentee_address}
        # The keys' order is the JSON's and the CSV's columns' order.
        row |= {
            "state": str(pair.status),
            "ended_reason": pair.ended_reason,
            "ended_by": pair.ended_by,
            "matched_on": pair.created_at.date().isoformat(),
            "days_since_matched": days(as_of, pair.created_at),
            "days_in_period": round(span, 1),
            "mentor_days_to_first": days(from_mentor.first, pair.created_at),
            "mentee_days_to_first": days(from_mentee.first, pair.created_at),
            "mentor_messages": from_mentor.count,
            "mentor_per_30_days": round(from_mentor.count * 30 / span, 2),
            "mentee_messages": from_mentee.count,
            "mentee_per_30_days": round(from_mentee.count * 30 / span, 2),
            "mentor_share": round(from_mentor.count / total, 3) if total else None,
            "mentor_median_reply_hours": None,  # add_reply_medians()
            "mentee_median_reply_hours": None,
            "mentor_days_silent": days(as_of, from_mentor.last),
            "mentee_days_silent": days(as_of, from_mentee.last),
            "prompts": sent,
            "prompts_answered": answered,
            "prompts_unanswered": sent - answered,
            "mentor_checkin": checkins.get((pair.id, pair.mentor_id)),
            "mentee_checkin": checkins.get((pair.id, pair.mentee_id)),
            "held": held.get(pair.id, 0),
            "rejected": rejected.get(pair.id, 0),
            "focus": [],
        }
        rows.append(row)
    return rows


def add_reply_medians(rows: list[dict[str, Any]], replies: PairMedians) -> None:
    """Each side's median reply time (relay.reports.replies) into the pairs' rows."""
    for row in rows:
        for side in ("mentor", "mentee"):
            row[f"{side}_median_reply_hours"] = one_decimal(replies.get((row["id"], side)))


@dataclass(frozen=True)
class SideFigures:
    """One participant's messages to one pair."""

    first: datetime | None  # before the report's moment
    last: datetime | None  # before the report's moment
    count: int  # in the period
    latest: datetime  # at any time (the focus list's "last wrote")


# pair -> sender -> figures
MessageStats = dict[int, dict[int, SideFigures]]


def message_stats(query: PairQuery) -> MessageStats:
    """One GROUP BY over the selected pairs' messages, every message once (index only)."""
    period = query.period
    before = Message.received_at < period.until
    statement = (
        select(
            Message.pair_id,
            Message.sender_id,
            func.min(Message.received_at),
            func.max(case((before, Message.received_at))),
            func.sum(case((before & (Message.received_at >= period.start), 1), else_=0)),
            func.max(Message.received_at),
        )
        .where(Message.pair_id.in_(select(query.selection.c.id)))
        .group_by(Message.pair_id, Message.sender_id)
    )
    found: MessageStats = {}
    for pair_id, sender_id, first, last, count, latest in query.session.execute(statement):
        first = first if first < period.until else None
        found.setdefault(pair_id, {})[sender_id] = SideFigures(first, last, int(count or 0), latest)
    return found


def _moderated(query: PairQuery) -> tuple[dict[int, int], dict[int, int]]:
    """Per pair: messages held on arrival in the period, and messages rejected in it."""
    held = query.held
    held_counts = {
        pair_id: int(count)
        for pair_id, count in query.session.execute(
            select(held.c.pair_id, func.count()).group_by(held.c.pair_id)
        )
    }
    period = query.period
    # Rejected mail is rare: read it through the status index first (MATERIALIZED keeps
    # SQLite from walking every message of every pair by ix_messages_pair_received).
    found = (
        select(Message.pair_id, Message.received_at)
        .where(Message.status == MessageStatus.REJECTED)
        .cte("rejected_mail")
        .prefix_with("MATERIALIZED")
    )
    rejected = (
        select(found.c.pair_id, func.count())
        .where(
            found.c.pair_id.in_(select(query.selection.c.id)),
            found.c.received_at >= period.start,
            found.c.received_at < period.until,
        )
        .group_by(found.c.pair_id)
    )
    return held_counts, {pair_id: int(n) for pair_id, n in query.session.execute(rejected)}


def _latest_scores(query: PairQuery) -> dict[tuple[int, int], int]:
    """Each participant's latest check-in score in each pair (answered before the moment)."""
    ranked = (
        select(
            Checkin.pair_id,
            Checkin.participant_id,
            Checkin.score,
            func.row_number()
            .over(
                partition_by=(Checkin.pair_id, Checkin.participant_id),
                order_by=(Checkin.answered_at.desc(), Checkin.id.desc()),
            )
            .label("rank"),
        )
        .where(
            Checkin.pair_id.in_(select(query.selection.c.id)),
            Checkin.score.is_not(None),
            Checkin.answered_at < query.period.until,
        )
        .subquery()
    )
    statement = select(ranked.c.pair_id, ranked.c.participant_id, ranked.c.score).where(
        ranked.c.rank == 1
    )
    return {(row[0], row[1]): int(row[2]) for row in query.session.execute(statement)}
