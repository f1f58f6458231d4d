"""The one write an operator makes on the outbox: `relay queue retry`.

Owns retrying failed or deferred rows now, and saying for each named row
what happened to it. Reading the outbox (`relay queue`, `queue list`) is
relay.ops.outbox; the worker's own bookkeeping stays in relay.delivery,
whose requeue() this uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.delivery.worker import RETRYABLE, requeue
from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus


@dataclass(frozen=True)
class RetryResult:
    outbox_id: int
    done: bool
    text: str


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
