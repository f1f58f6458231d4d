"""Data retention: forgetting the bodies of ended pairs' mail after a set time.

Owns `relay purge --older-than 365d`: for pairs that ended longer ago than
the retention period, every message's raw bytes and subject, the rendered
copies in the outbox, and any mail set aside for the pair are emptied; each message row stays as a
tombstone (who wrote to whom, when, and what was decided), and the
moderation audit trail is kept whole. `--dry-run` counts without changing
anything. Active pairs are never purged, however old their mail.

Safeguarding comes first: a pair with an open, investigating or referred
concern is not purged at all, and a message linked to any concern (closed
ones too) is kept whatever its age; the report says what was kept and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relay.mail.addresses import pair_address
from relay.store.models import Message, OutboxEntry, Pair, SetAside
from relay.store.safeguarding_models import Concern, ConcernMessage, ConcernPair
from relay.store.states import LIVE_CONCERN_STATES, PairStatus, utcnow

TOMBSTONE_SUBJECT = "[purged]"


@dataclass(frozen=True)
class PurgeReport:
    pairs: int
    messages: int
    bytes: int
    cutoff: datetime
    kept: list[str] = field(default_factory=list)  # what was kept and why, one line each


def purge(
    session: Session, older_than: timedelta, dry_run: bool = False, domain: str = ""
) -> PurgeReport:
    cutoff = utcnow() - older_than
    due = list(
        session.scalars(select(Pair).where(Pair.status == PairStatus.ENDED, Pair.ended_at < cutoff))
    )
    kept = []
    live = _live_concerns_by_pair(session, [pair.id for pair in due])
    for pair in due:
        if pair.id in live:
            listed = ", ".join(str(c) for c in live[pair.id])
            name = pair_address(pair.token, domain) if domain else pair.token
            kept.append(f"pair {name}: it has a live concern ({listed})")
    pair_ids = [pair.id for pair in due if pair.id not in live]
    if not pair_ids:
        return PurgeReport(0, 0, 0, cutoff, kept)
    linked = select(ConcernMessage.message_id).scalar_subquery()
    held_back = session.execute(
        select(Message.id, func.min(ConcernMessage.concern_id))
        .join(ConcernMessage, ConcernMessage.message_id == Message.id)
        .where(Message.pair_id.in_(pair_ids), Message.purged_at.is_(None))
        .group_by(Message.id)
        .order_by(Message.id)
    ).all()
    kept.extend(f"message {mid}: linked to concern {cid}" for mid, cid in held_back)
    waiting = (
        Message.pair_id.in_(pair_ids),
        Message.purged_at.is_(None),
        Message.id.not_in(linked),
    )
    messages, size = session.execute(
        select(func.count(Message.id), func.coalesce(func.sum(Message.size), 0)).where(*waiting)
    ).one()
    if not dry_run:
        session.execute(
            update(SetAside)
            .where(SetAside.pair_id.in_(pair_ids), SetAside.size > 0)
            .values(raw=b"", size=0)
            .execution_options(synchronize_session=False)
        )
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
    return PurgeReport(len(pair_ids), int(messages), int(size), cutoff, kept)


def _live_concerns_by_pair(session: Session, pair_ids: list[int]) -> dict[int, list[int]]:
    if not pair_ids:
        return {}
    rows = session.execute(
        select(ConcernPair.pair_id, Concern.id)
        .join(Concern, Concern.id == ConcernPair.concern_id)
        .where(ConcernPair.pair_id.in_(pair_ids), Concern.status.in_(LIVE_CONCERN_STATES))
        .order_by(Concern.id)
    )
    found: dict[int, list[int]] = {}
    for pair_id, concern_id in rows:
        found.setdefault(pair_id, []).append(concern_id)
    return found
