"""A pair's transcript: what coordinators read with `relay log`, `pair show` and `export`.

Owns the view of a pair's messages, oldest first, each with who wrote it
(by role), its subject, and its state, and the one word for that state
every command uses (`relay log`, `relay show`, `relay pair show`): a
moderation outcome (held, rejected, discarded) or, once a message is passed
on, where its delivery stands (queued, sending, deferred, delivered,
failed). Also a pair's counts and its last message each way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.errors import NotFoundError
from relay.store.models import Message, ModerationAction, OutboxEntry, Pair
from relay.store.states import DeliveryStatus, MessageStatus, OutboxKind

# Every word `state` can be, in the order a message moves through them.
STATES = (
    "held",
    "rejected",
    "discarded",
    "queued",
    "sending",
    "deferred",
    "delivered",
    "failed",
)


def state_word(status: MessageStatus, delivery: DeliveryStatus | None) -> str:
    """One word for where a message stands; a passed-on message says how its delivery went."""
    if status is MessageStatus.QUEUED and delivery is not None:
        return delivery.value
    return status.value


def state_of(session: Session, message: Message) -> str:
    delivery = session.scalar(
        select(OutboxEntry.status).where(
            OutboxEntry.message_id == message.id, OutboxEntry.kind == OutboxKind.FORWARD
        )
    )
    return state_word(message.status, delivery)


@dataclass(frozen=True)
class TranscriptLine:
    message_id: int
    received_at: datetime
    sender_role: str
    subject: str
    status: str  # the state word (see STATES)
    message: Message

    @property
    def state(self) -> str:
        return self.status

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.message_id,
            "received_at": self.received_at.isoformat(timespec="seconds"),
            "from": self.sender_role,
            "subject": self.subject,
            "state": self.status,
        }


def transcript(session: Session, pair: Pair) -> list[TranscriptLine]:
    rows = session.execute(
        select(Message, OutboxEntry.status)
        .outerjoin(
            OutboxEntry,
            (OutboxEntry.message_id == Message.id) & (OutboxEntry.kind == OutboxKind.FORWARD),
        )
        .where(Message.pair_id == pair.id)
        .order_by(Message.received_at, Message.id)
    ).all()
    lines = []
    for message, delivery in rows:
        role = "mentor" if message.sender_id == pair.mentor_id else "mentee"
        lines.append(
            TranscriptLine(
                message.id,
                message.received_at,
                role,
                message.subject,
                state_word(message.status, delivery),
                message,
            )
        )
    return lines


def message_in_pair(session: Session, pair: Pair, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.pair_id != pair.id:
        raise NotFoundError(f"no message {message_id} in this pair's transcript")
    return message


def decisions(session: Session, pair: Pair) -> dict[int, list[ModerationAction]]:
    """The moderators' actions on the pair's messages, by message id, oldest first."""
    actions = session.scalars(
        select(ModerationAction)
        .join(Message, Message.id == ModerationAction.message_id)
        .where(Message.pair_id == pair.id)
        .order_by(ModerationAction.created_at, ModerationAction.id)
    )
    found: dict[int, list[ModerationAction]] = {}
    for action in actions:
        found.setdefault(action.message_id, []).append(action)
    return found


@dataclass(frozen=True)
class Direction:
    """What one side of a pair has written."""

    sender_role: str
    messages: int
    last_id: int | None
    last_at: datetime | None
    last_subject: str
    last_state: str

    def as_json(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "last": None
            if self.last_id is None
            else {
                "id": self.last_id,
                "received_at": self.last_at.isoformat(timespec="seconds") if self.last_at else None,
                "subject": self.last_subject,
                "state": self.last_state,
            },
        }


@dataclass(frozen=True)
class PairSummary:
    states: dict[str, int]  # state word -> how many messages
    mentor_to_mentee: Direction
    mentee_to_mentor: Direction

    @property
    def messages(self) -> int:
        return sum(self.states.values())


def summary(session: Session, pair: Pair) -> PairSummary:
    lines = transcript(session, pair)
    states = Counter(line.status for line in lines)

    def direction(role: str) -> Direction:
        mine = [line for line in lines if line.sender_role == role]
        if not mine:
            return Direction(role, 0, None, None, "", "")
        last = mine[-1]
        return Direction(
            role, len(mine), last.message_id, last.received_at, last.subject, last.status
        )

    return PairSummary(
        {state: states[state] for state in STATES if states[state]},
        direction("mentor"),
        direction("mentee"),
    )
