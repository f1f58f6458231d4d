"""The focus list: the pairs that need a coordinator now, and why.

Owns the reasons and their order. A pair is on the list for a low check-in
(a latest answer of 1-2, or one the moderation rules flagged), held mail
waiting longer than ``held_waiting``, one-sided silence or a quiet pair
lasting ``focus_after``, or two prompts in a row that neither answered.
Each reason carries the date it started; the most urgent pairs come first
(by their most serious reason, then the oldest start).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.mail.addresses import pair_address
from relay.programme.focus_inputs import FocusInputs, silences_from
from relay.programme.silence import silences
from relay.store.models import Checkin, Cohort, Message, Pair, ScheduledSend
from relay.store.states import OPEN_PAIR_STATES, ItemKind, MessageStatus, SendStatus, utcnow

PairKey = tuple[int, str, str | None, str]  # id, token, cohort, status
Entry = Callable[[PairKey], "FocusPair"]
LOW_SCORE = 2
# Most serious first.
REASONS = (
    "low check-in",
    "held mail waiting",
    "one-sided silence",
    "quiet pair",
    "unanswered prompts",
)


@dataclass(frozen=True)
class Reason:
    what: str
    since: datetime
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.what, "since": self.since.isoformat(), "detail": self.detail}


@dataclass
class FocusPair:
    address: str
    cohort: str
    status: str
    reasons: list[Reason] = field(default_factory=list)

    def urgency(self) -> tuple[int, datetime]:
        return (
            min(REASONS.index(reason.what) for reason in self.reasons),
            min(reason.since for reason in self.reasons),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "pair": self.address,
            "cohort": self.cohort,
            "status": self.status,
            "reasons": [reason.to_json() for reason in self.reasons],
        }


def focus_list(
    session: Session,
    config: Config,
    now: datetime,
    cohort: str | None = None,
    inputs: FocusInputs | None = None,
) -> list[FocusPair]:
    """The pairs that need a coordinator at ``now``, most urgent first.

    ``inputs``: facts the caller has already read (relay.programme.focus_inputs);
    then only the pairs they cover are looked at, and the messages and prompts
    are not read again.
    """
    domain = config.relay.domain
    found: dict[int, FocusPair] = {}

    def entry(row: PairKey) -> FocusPair:
        pair_id, token, cohort_name, status = row
        if pair_id not in found:
            found[pair_id] = FocusPair(pair_address(token, domain), cohort_name or "", str(status))
        return found[pair_id]

    base = (
        select(
            Pair.id,
            Pair.token,
            Cohort.name,
            Pair.status,
            Pair.started_on,
            Pair.mentor_id,
            Pair.mentee_id,
            Pair.cohort_id,
        )
        .outerjoin(Cohort, Cohort.id == Pair.cohort_id)
        .where(Pair.status.in_(OPEN_PAIR_STATES))
    )
    if cohort is not None:
        base = base.where(Cohort.name == cohort)
    rows = session.execute(base).all()
    pairs: dict[int, PairKey] = {row[0]: (row[0], row[1], row[2], str(row[3])) for row in rows}
    if not pairs:
        return []
    _low_checkins(session, pairs, entry)
    _held(session, config, now, pairs, entry)
    programme = config.programme
    if inputs is None or inputs.last_prompts is None:
        last_prompts = _last_two_prompts(session)
    else:
        last_prompts = dict(inputs.last_prompts)
    if inputs is None:
        quiet = silences(
            session,
            now,
            programme.time_zone,
            programme.send_hour,
            statuses=tuple(OPEN_PAIR_STATES),
            cohort=cohort,
        )
    else:
        quiet = silences_from(inputs, rows, now, programme.time_zone, programme.send_hour)
    for silence in quiet:
        row = pairs.get(silence.pair_id)
        if row is None:
            continue
        for role in ("mentor", "mentee"):
            since = silence.since(role)
            if silence.partner_wrote_since(role) and now - since >= programme.focus_after:
                entry(row).reasons.append(
                    Reason("one-sided silence", since, f"the {role} has not written")
                )
        if now - silence.pair_since >= programme.focus_after:
            entry(row).reasons.append(Reason("quiet pair", silence.pair_since, "neither writes"))
        _unanswered(
            last_prompts.get(silence.pair_id, []),
            silence.mentor_last,
            silence.mentee_last,
            row,
            entry,
        )
    listed = [pair for pair in found.values() if pair.reasons]
    return sorted(listed, key=FocusPair.urgency)


def _low_checkins(session: Session, pairs: Mapping[int, PairKey], entry: Entry) -> None:
    latest = (
        select(Checkin.participant_id, func.max(Checkin.answered_at).label("answered"))
        .where(Checkin.answered_at.is_not(None))
        .group_by(Checkin.participant_id)
        .subquery()
    )
    rows = session.execute(
        select(Checkin.pair_id, Checkin.score, Checkin.flagged, Checkin.answered_at).join(
            latest,
            (latest.c.participant_id == Checkin.participant_id)
            & (latest.c.answered == Checkin.answered_at),
        )
    )
    for pair_id, score, flagged, answered_at in rows:
        if pair_id not in pairs:
            continue
        if (score is not None and score <= LOW_SCORE) or flagged:
            detail = f"score {score}" if score is not None else "no score"
            if flagged:
                detail += ", comment flagged by the rules"
            since = answered_at or utcnow()
            entry(pairs[pair_id]).reasons.append(Reason("low check-in", since, detail))


def _held(
    session: Session, config: Config, now: datetime, pairs: Mapping[int, PairKey], entry: Entry
) -> None:
    rows = session.execute(
        select(Message.pair_id, func.min(Message.received_at), func.count(Message.id))
        .where(
            # Through the status index: held mail is rare among all messages.
            Message.id.in_(select(Message.id).where(Message.status == MessageStatus.HELD)),
            Message.received_at <= now - config.programme.held_waiting,
        )
        .group_by(Message.pair_id)
    )
    for pair_id, oldest, count in rows:
        if pair_id in pairs:
            entry(pairs[pair_id]).reasons.append(
                Reason("held mail waiting", oldest, f"{count} held message(s)")
            )


def _last_two_prompts(session: Session) -> dict[int, list[datetime]]:
    """Per pair, when its last two prompts went out (newest first), in one query."""
    sent_at = func.min(ScheduledSend.done_at)
    per_prompt = (
        select(
            ScheduledSend.pair_id.label("pair_id"),
            sent_at.label("sent_at"),
            func.row_number()
            .over(partition_by=ScheduledSend.pair_id, order_by=sent_at.desc())
            .label("rank"),
        )
        .where(ScheduledSend.kind == ItemKind.PROMPT, ScheduledSend.status == SendStatus.SENT)
        .group_by(ScheduledSend.pair_id, ScheduledSend.item_key)
        .subquery()
    )
    found: dict[int, list[datetime]] = {}
    for pair_id, when in session.execute(
        select(per_prompt.c.pair_id, per_prompt.c.sent_at)
        .where(per_prompt.c.rank <= 2)
        .order_by(per_prompt.c.pair_id, per_prompt.c.rank)
    ):
        found.setdefault(pair_id, []).append(when)
    return found


def _unanswered(
    prompts: list[datetime],
    mentor_last: datetime | None,
    mentee_last: datetime | None,
    row: PairKey,
    entry: Entry,
) -> None:
    if len(prompts) < 2:
        return
    last_written = max((t for t in (mentor_last, mentee_last) if t is not None), default=None)
    if last_written is None or last_written < prompts[1]:
        entry(row).reasons.append(
            Reason("unanswered prompts", prompts[0], "the last two prompts got no reply")
        )
