"""The outbox as operators read it: what "waiting" means, counts by state, rows by state.

Owns the one WAITING set (mail the relay still owns and has not yet handed
on) and the one query behind each way of reading the outbox: counts by
delivery state, and the rows in some states, oldest first (the oldest
waiting row is its first row over WAITING). ``relay queue``, ``relay queue
list``, ``relay status`` and the ``relay_outbox_messages`` gauge all read
them here, so they cannot disagree. The queries are SQL text run by a
relay.store.plain Reader, so the commands run them without loading
SQLAlchemy and the daemon runs the very same text through its session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from relay.store.plain import Reader, Row, first, scalar, timestamp
from relay.store.states import DeliveryStatus, OutboxKind

WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
# What `relay queue list` shows when no --state is given: everything not delivered.
NOT_DELIVERED = (*WAITING, DeliveryStatus.FAILED)

COUNTS = "SELECT status, COUNT(*) FROM outbox GROUP BY status"
_COLUMNS = (
    "id, status, kind, notice, message_id, recipient, attempts, created_at, "
    "next_attempt_at, last_error"
)


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as operators see it (everything but the mail itself)."""

    id: int
    status: DeliveryStatus
    kind: OutboxKind
    notice: str | None
    message_id: int | None
    recipient: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None

    @classmethod
    def read(cls, row: Row) -> OutboxRow:
        created_at, next_attempt_at = timestamp(row[7]), timestamp(row[8])
        if created_at is None or next_attempt_at is None:
            raise ValueError(f"outbox {row[0]}: no created_at or next_attempt_at")
        return cls(
            id=int(row[0]),
            status=DeliveryStatus(row[1]),
            kind=OutboxKind(row[2]),
            notice=row[3],
            message_id=row[4],
            recipient=row[5],
            attempts=int(row[6]),
            created_at=created_at,
            next_attempt_at=next_attempt_at,
            last_error=row[9],
        )


def _in_states(states: Iterable[DeliveryStatus]) -> str:
    # The enum's own constant values, not input: safe to write into the text.
    return "status IN (" + ", ".join(f"'{DeliveryStatus(state).value}'" for state in states) + ")"


def counts(reader: Reader) -> dict[DeliveryStatus, int]:
    """How many outbox rows are in each state; every state is present, in the enum's order."""
    found = dict.fromkeys(DeliveryStatus, 0)
    for status, count in reader.rows(COUNTS):
        found[DeliveryStatus(status)] = int(count)
    return found


def rows_in(
    reader: Reader, states: Iterable[DeliveryStatus] = NOT_DELIVERED, limit: int | None = None
) -> tuple[list[OutboxRow], int]:
    """Rows in the given states, oldest first (at most limit), and how many there are."""
    where = _in_states(states)
    total = int(scalar(reader, f"SELECT COUNT(*) FROM outbox WHERE {where}") or 0)
    return [OutboxRow.read(row) for row in reader.rows(_oldest_first(where, limit))], total


def oldest_waiting(reader: Reader) -> OutboxRow | None:
    """The row that has waited longest among those still WAITING."""
    row = first(reader, _oldest_first(_in_states(WAITING), 1))
    return None if row is None else OutboxRow.read(row)


def _oldest_first(where: str, limit: int | None) -> str:
    query = f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY created_at, id"
    return query if limit is None else f"{query} LIMIT {int(limit)}"
