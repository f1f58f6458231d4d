"""The outbox as an operator sees it: `relay queue`, `queue list`, `queue retry`.

Owns the read side of delivery (counts by state, the oldest mail still
waiting, the rows in a state with their last error and next attempt) and the
one write an operator makes: retrying failed or deferred rows now. The
worker's own bookkeeping stays in relay.delivery, whose requeue() this uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.delivery.worker import RETRYABLE, requeue
from relay.ops import outbox
from relay.store.models import OutboxEntry
from relay.store.plain import SqlAlchemyReader
from relay.store.states import DeliveryStatus

# What `relay queue list` shows when no --state is given: everything not delivered.
NOT_DELIVERED = (*outbox.WAITING, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class Summary:
    counts: dict[DeliveryStatus, int]
    oldest_waiting: OutboxEntry | None


@dataclass(frozen=True)
class RetryResult:
    outbox_id: int
    done: bool
    text: str


def summary(session: Session) -> Summary:
    """How many outbox rows are in each state, and the oldest one still waiting."""
    reader = SqlAlchemyReader(session)
    oldest = outbox.oldest_waiting(reader)
    row = None if oldest is None else session.get(OutboxEntry, oldest.outbox_id)
    return Summary(outbox.counts(reader), row)


def entries(
    session: Session, states: Iterable[DeliveryStatus] = NOT_DELIVERED, limit: int | None = None
) -> tuple[list[OutboxEntry], int]:
    """Rows in the given states, oldest first (at most limit), and how many there are."""
    wanted = tuple(states)
    total = session.scalar(
        select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status.in_(wanted))
    )
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.status.in_(wanted))
        .order_by(OutboxEntry.created_at, OutboxEntry.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total or 0)


def retry(session: Session, outbox_ids: Sequence[int]) -> list[RetryResult]:
    """Make each named failed or deferred row due now; say what happened to each."""
    results = []
    for outbox_id in dict.fromkeys(outbox_ids):
        if requeue(session, [outbox_id]):
            results.append(RetryResult(outbox_id, True, f"outbox {outbox_id}: will be retried"))
            continue
        status = session.scalar(select(OutboxEntry.status).where(OutboxEntry.id == outbox_id))
        if status is None:
            text = f"outbox {outbox_id}: no such entry"
        else:
            retryable = " or ".join(state.value for state in RETRYABLE)
            text = f"outbox {outbox_id}: is {status.value}, only {retryable} mail can be retried"
        results.append(RetryResult(outbox_id, False, text))
    return results


def retry_all_failed(session: Session) -> int:
    """Make every failed row due now; returns how many."""
    failed = list(
        session.scalars(select(OutboxEntry.id).where(OutboxEntry.status == DeliveryStatus.FAILED))
    )
    # In chunks: SQLite caps the number of bound parameters in one statement.
    return sum(requeue(session, failed[at : at + 500]) for at in range(0, len(failed), 500))
