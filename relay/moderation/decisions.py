"""Moderators' decisions about held mail, and the audit trail.

Owns approve / reject / discard (each idempotent and safe when two
moderators act at once: the first decision wins, the second is told who
made it), the queries behind `relay held`, `relay show` and `relay audit`,
and the "what waits" alert to moderators.

A decision is one conditional UPDATE (status must still be 'held') plus its
consequences and audit row, in one transaction: on SQLite the write lock,
on PostgreSQL the row lock makes the second moderator's UPDATE find nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import queue_forward
from relay.delivery.notices import Moderator, Notice, Notices
from relay.errors import NotFoundError
from relay.mail.reading import parse
from relay.moderation.held import alert_item, held_messages
from relay.outbound.redact import redact
from relay.rules.base import Hit
from relay.store.models import Message, ModerationAction, OutboxEntry
from relay.store.plain import SqlAlchemyReader
from relay.store.states import MessageStatus, ModerationVerdict, utcnow

_OUTCOME = {
    ModerationVerdict.APPROVE: MessageStatus.QUEUED,
    ModerationVerdict.REJECT: MessageStatus.REJECTED,
    ModerationVerdict.DISCARD: MessageStatus.DISCARDED,
}
_PAST = {
    ModerationVerdict.APPROVE: "approved",
    ModerationVerdict.REJECT: "rejected",
    ModerationVerdict.DISCARD: "discarded",
}


@dataclass(frozen=True)
class Result:
    """What became of one moderator request."""

    message_id: int
    done: bool  # False: someone (or something) had already decided
    text: str


def unverified(message: Message) -> bool:
    """Whether the message's From was not authenticated when it came in."""
    return any(hit.rule == "authentication" for hit in hits_of(message))


def hits_of(message: Message) -> list[Hit]:
    return [Hit.from_json(each) for each in json.loads(message.hits or "[]")]


def get_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFoundError(f"no message {message_id}")
    return message


def decide(
    session: Session,
    config: Config,
    notices: Notices,
    message_id: int,
    verdict: ModerationVerdict,
    moderator: str,
    reason: str = "",
    redact_spans: bool = False,
) -> Result:
    message = get_message(session, message_id)
    now = utcnow()
    claimed = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.HELD)
        .values(status=_OUTCOME[verdict], decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        session.refresh(message)
        return Result(message_id, False, _already(session, message))
    session.refresh(message)
    if verdict is ModerationVerdict.APPROVE:
        original: EmailMessage = parse(message.raw)
        if redact_spans:
            original = redact(original, hits_of(message))
        queue_forward(session, config, message, original)
    elif verdict is ModerationVerdict.REJECT and not unverified(message):
        # A message whose From was never authenticated may not be the participant's:
        # they are not told of its rejection (docs/security.md, no address oracle).
        notices.to_sender(session, Notice.REJECTED, message, reason=reason or "no reason was given")
    session.add(
        ModerationAction(
            message_id=message.id,
            moderator=moderator,
            verdict=verdict,
            redacted=redact_spans,
            reason=reason,
            created_at=now,
        )
    )
    redacted = " with flagged text removed" if redact_spans else ""
    return Result(message_id, True, f"message {message_id} {_PAST[verdict]}{redacted}")


def _already(session: Session, message: Message) -> str:
    last = session.scalars(
        select(ModerationAction)
        .where(ModerationAction.message_id == message.id)
        .order_by(ModerationAction.created_at.desc(), ModerationAction.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return f"message {message.id} is not held (it was {message.status.value} on arrival)"
    when = last.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"message {message.id} was already {_PAST[last.verdict]} by {last.moderator} at {when}"


def audit_trail(session: Session, message_id: int | None = None) -> list[ModerationAction]:
    query = select(ModerationAction).order_by(ModerationAction.created_at, ModerationAction.id)
    if message_id is not None:
        query = query.where(ModerationAction.message_id == message_id)
    return list(session.scalars(query))


def queue_moderator_alert(session: Session, config: Config, notices: Notices) -> bool:
    """Tell moderators what waits, at most once per alert_interval; True if queued."""
    settings = config.moderation
    if not settings.moderators:
        return False
    now = utcnow()
    last_alert = session.scalar(
        select(func.max(OutboxEntry.created_at)).where(OutboxEntry.notice == Notice.MODERATOR_ALERT)
    )
    if last_alert is not None and now - last_alert < settings.alert_interval:
        return False
    waiting = held_messages(SqlAlchemyReader(session))
    news = [m for m in waiting if last_alert is None or m.received_at > last_alert]
    if not news:
        return False
    listed = [alert_item(message, config.relay.domain, now) for message in waiting]
    for address in settings.moderators:
        notices.queue(
            session, Notice.MODERATOR_ALERT, Moderator("Moderator", address), waiting=listed
        )
    return True
