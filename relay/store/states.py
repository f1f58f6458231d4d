"""The states a stored row can be in, and the store's clock.

Owns the enums the tables use (roles, pair and message states, outbox kinds
and delivery states, moderators' verdicts, the programme's item kinds and
send states) and ``utcnow``. It imports no
SQLAlchemy, so the command line can name states (``--role``, ``--state``)
without loading the ORM; relay.store.models maps them to columns.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    MENTOR = "mentor"
    MENTEE = "mentee"


class PairStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # mail between them is held for a moderator; nothing is sent to them
    ENDED = "ended"


#: States in which a pair's address still takes mail.
OPEN_PAIR_STATES = frozenset({PairStatus.ACTIVE, PairStatus.PAUSED})


class MessageStatus(enum.StrEnum):
    """What was decided about a received message."""

    QUEUED = "queued"  # accepted; its forward is in the outbox
    HELD = "held"
    REJECTED = "rejected"
    DISCARDED = "discarded"


class OutboxKind(enum.StrEnum):
    FORWARD = "forward"
    NOTICE = "notice"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    FAILED = "failed"


class ModerationVerdict(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    DISCARD = "discard"


class ConcernStatus(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    REFERRED = "referred"
    CLOSED = "closed"


#: A concern in one of these states keeps its pairs and messages out of `relay purge`.
LIVE_CONCERN_STATES = frozenset(
    {ConcernStatus.OPEN, ConcernStatus.INVESTIGATING, ConcernStatus.REFERRED}
)


class ItemKind(enum.StrEnum):
    PROMPT = "prompt"
    CHECKIN = "checkin"
    CLOSING = "closing"
    COMPLETED = "completed"  # the end of the pair's weeks: it ends, with a renewal offer


class SendStatus(enum.StrEnum):
    SENT = "sent"  # queued in the outbox in the same commit as this row
    SKIPPED = "skipped"  # a prompt found too late (after downtime), or the pair was not active


class OfferState(enum.StrEnum):
    """Where a match offer stands (relay/offers)."""

    OPEN = "open"  # waiting for the mentee's choice or a mentor's answer
    ACCEPTED = "accepted"  # a mentor said yes: the pair exists
    DECLINED = "declined"  # the mentee chose, and no choice took them (no, silence, full)
    EXPIRED = "expired"  # the mentee did not choose within [matching] offer_expires
    CANCELLED = "cancelled"  # by a coordinator (`relay offers cancel`)


class ChoiceState(enum.StrEnum):
    """One mentor named in an offer."""

    LISTED = "listed"  # named in the offer, not (yet) invited
    INVITED = "invited"  # the invitation is open: the mentor's place is held
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # no answer within offer_expires
    FULL = "full"  # chosen, but no free place by then
    WITHDRAWN = "withdrawn"  # the offer ended another way
