"""The counts intake's rules and notices read: a sender's earlier mail, notices sent.

Owns the queries (each served by an index on messages or outbox). Mail whose
From was not authenticated is not counted as the participant's: it may not
be theirs, and counting it would let spoofed mail use up a participant's
new-pair hold or trip the rate rule for them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from relay.store.models import Message, OutboxEntry
from relay.store.states import MessageStatus

_UNVERIFIED_HIT = '"rule": "authentication"'  # as Hit.to_json writes it


def _count_messages(session: Session, *conditions: ColumnElement[bool]) -> int:
    verified = ~Message.hits.contains(_UNVERIFIED_HIT, autoescape=True)
    return int(session.scalar(select(func.count(Message.id)).where(*conditions, verified)) or 0)


def sender_messages_in_pair(session: Session, pair_id: int, sender_id: int) -> int:
    """Earlier mail in the pair that was passed on or waits: a message refused by a rule or
    a moderator does not use up one of a new pair's first, watched-over messages."""
    return _count_messages(
        session,
        Message.pair_id == pair_id,
        Message.sender_id == sender_id,
        Message.status.notin_((MessageStatus.REJECTED, MessageStatus.DISCARDED)),
    )


def sender_messages_since(session: Session, sender_id: int, since: datetime) -> int:
    return _count_messages(session, Message.sender_id == sender_id, Message.received_at >= since)


def notices_since(session: Session, notice: str, recipient: str, since: datetime) -> int:
    query = select(func.count(OutboxEntry.id)).where(
        OutboxEntry.notice == notice,
        OutboxEntry.recipient == recipient,
        OutboxEntry.created_at >= since,
    )
    return int(session.scalar(query) or 0)
