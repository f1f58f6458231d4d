"""Spot checks: a share of delivered, unflagged mail is read by a person.

Owns which messages are in the sample and recording a check. Membership is a
pure function of the message's relay Message-ID and [safeguarding]
sample_rate (the first 8 bytes of its SHA-256, as a fraction of 2**64, below
the rate), so it is deterministic per message, costs nothing on the way in,
and a test can count it. A message is eligible once its forward was delivered
and if no rule hit it. Marking one "concern" opens a concern on its pair.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notices
from relay.errors import ConflictError, NotFoundError
from relay.safeguarding.concerns import alert_leads, open_concern
from relay.store.models import Message, OutboxEntry
from relay.store.safeguarding_models import SpotCheck
from relay.store.states import DeliveryStatus, MessageStatus, OutboxKind

VERDICTS = ("ok", "concern")


def in_sample(relay_message_id: str, rate: float) -> bool:
    digest = hashlib.sha256(relay_message_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True)
class Sampled:
    message: Message
    check: SpotCheck | None


@dataclass(frozen=True)
class Summary:
    """For a report's moderation section: how much was sampled and checked."""

    eligible: int  # delivered, unflagged messages
    sampled: int
    checked_ok: int
    checked_concern: int


def summary(session: Session, rate: float) -> Summary:
    return summarise(*sample_and_count(session, rate))


def summarise(eligible: int, listed: list[Sampled]) -> Summary:
    verdicts = [s.check.verdict for s in listed if s.check is not None]
    return Summary(eligible, len(listed), verdicts.count("ok"), verdicts.count("concern"))


def sample(session: Session, rate: float) -> list[Sampled]:
    """Sampled messages, unchecked first, oldest first within each."""
    return sample_and_count(session, rate)[1]


def sample_and_count(session: Session, rate: float) -> tuple[int, list[Sampled]]:
    """How many messages were eligible, and the sampled ones."""
    if rate <= 0:
        return 0, []
    delivered = (
        select(Message.id, Message.relay_message_id)
        .join(OutboxEntry, OutboxEntry.message_id == Message.id)
        .where(
            OutboxEntry.kind == OutboxKind.FORWARD,
            OutboxEntry.status == DeliveryStatus.DELIVERED,
            Message.status == MessageStatus.QUEUED,
            Message.hits == "[]",
            Message.purged_at.is_(None),
        )
        .order_by(Message.id)
    )
    # Ids only: the bodies of the few chosen are loaded below, not of every message.
    rows = session.execute(delivered).all()
    ids = [row.id for row in rows if in_sample(row.relay_message_id, rate)]
    chosen = list(session.scalars(select(Message).where(Message.id.in_(ids)))) if ids else []
    checks = {
        check.message_id: check
        for check in session.scalars(
            select(SpotCheck).where(SpotCheck.message_id.in_([m.id for m in chosen]))
        )
    }
    listed = [Sampled(m, checks.get(m.id)) for m in chosen]
    return len(rows), sorted(listed, key=lambda s: (s.check is not None, s.message.id))


def mark(
    session: Session, config: Config, notices: Notices, message_id: int, verdict: str, who: str
) -> SpotCheck:
    if verdict not in VERDICTS:
        raise ConflictError(f"unknown verdict {verdict!r} (ok or concern)")
    message = session.get(Message, message_id)
    if message is None:
        raise NotFoundError(f"no message {message_id}")
    if not any(
        s.message.id == message_id for s in sample(session, config.safeguarding.sample_rate)
    ):
        raise ConflictError(f"message {message_id} is not in the spot-check sample")
    existing = session.scalar(select(SpotCheck).where(SpotCheck.message_id == message_id))
    if existing is not None:
        raise ConflictError(
            f"message {message_id} was already checked by {existing.checked_by} "
            f"({existing.verdict})"
        )
    check = SpotCheck(message_id=message_id, verdict=verdict, checked_by=who)
    if verdict == "concern":
        concern = open_concern(
            session,
            source="sample",
            raised_by=who,
            summary=f"spot check of message {message_id}",
            pairs=[message.pair],
            messages=[message],
        )
        check.concern_id = concern.id
        alert_leads(
            session, config, notices, concern, f"a spot check of message {message_id} raised it"
        )
    session.add(check)
    return check
