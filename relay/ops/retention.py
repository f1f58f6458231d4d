"""Data retention: forgetting the bodies of ended pairs' mail after a set time.

Owns `relay purge --older-than 365d`: for pairs that ended longer ago than
the retention period, every message's raw bytes and subject, and the
rendered copies in the outbox, are emptied; each message row stays as a
tombstone (who wrote to whom, when, and what was decided), and the
moderation audit trail is kept whole. `--dry-run` counts without changing
anything. Active pairs are never purged, however old their mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relay.store.models import Message, OutboxEntry, Pair
from relay.store.states import PairStatus, utcnow

TOMBSTONE_SUBJECT = "[purged]"


@dataclass(frozen=True)
class PurgeReport:
    pairs: int
    messages: int
    bytes: int
    cutoff: datetime


def purge(session: Session, older_than: timedelta, dry_run: bool = False) -> PurgeReport:
    cutoff = utcnow() - older_than
    pair_ids = list(
        session.scalars(
            select(Pair.id).where(Pair.status == PairStatus.ENDED, Pair.ended_at < cutoff)
        )
    )
    if not pair_ids:
        return PurgeReport(0, 0, 0, cutoff)
    waiting = (Message.pair_id.in_(pair_ids), Message.purged_at.is_(None))
    messages, size = session.execute(
        select(func.count(Message.id), func.coalesce(func.sum(Message.size), 0)).where(*waiting)
    ).one()
    if not dry_run and messages:
        message_ids = select(Message.id).where(*waiting).scalar_subquery()
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.message_id.in_(message_ids))
            .values(content=b"")
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Message)
            .where(*waiting)
            .values(raw=b"", subject=TOMBSTONE_SUBJECT, purged_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return PurgeReport(len(pair_ids), int(messages), int(size), cutoff)
