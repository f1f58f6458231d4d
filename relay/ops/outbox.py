"""The outbox as operators count it: what "waiting" means, and counts by state.

Owns the one WAITING set (mail the relay still owns and has not yet handed
on) and the one query behind every count of the outbox by delivery state:
``relay queue``, ``relay status`` and the ``relay_outbox_messages`` gauge
all read it here, so they cannot disagree.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus

WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


def counts(session: Session) -> dict[DeliveryStatus, int]:
    """How many outbox rows are in each state; every state is present, in the enum's order."""
    found = dict.fromkeys(DeliveryStatus, 0)
    for status, count in session.execute(
        select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status)
    ):
        found[DeliveryStatus(status)] = int(count)
    return found


def oldest_waiting(session: Session) -> OutboxEntry | None:
    """The row that has waited longest among those still WAITING."""
    return session.scalars(
        select(OutboxEntry)
        .where(OutboxEntry.status.in_(WAITING))
        .order_by(OutboxEntry.created_at, OutboxEntry.id)
        .limit(1)
    ).first()
