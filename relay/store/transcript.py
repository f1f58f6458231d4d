"""A pair's transcript: what coordinators read with `relay log`.

Owns the view of a pair's messages, oldest first, each with who wrote it
(by role), its subject, and where it stands: held, rejected or discarded by
moderation, or the state of its delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.errors import NotFoundError
from relay.store.models import Message, OutboxEntry, Pair
from relay.store.states import MessageStatus, OutboxKind


@dataclass(frozen=True)
class TranscriptLine:
    message_id: int
    received_at: datetime
    sender_role: str
    subject: str
    status: str


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
        status = message.status.value
        if message.status is MessageStatus.QUEUED and delivery is not None:
            status = delivery.value
        role = "mentor" if message.sender_id == pair.mentor_id else "mentee"
        lines.append(TranscriptLine(message.id, message.received_at, role, message.subject, status))
    return lines


def message_in_pair(session: Session, pair: Pair, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.pair_id != pair.id:
        raise NotFoundError(f"no message {message_id} in this pair's transcript")
    return message
