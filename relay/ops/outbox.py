"""The outbox as operators count it: what "waiting" means, and counts by state.

Owns the one WAITING set (mail the relay still owns and has not yet handed
on) and the one query behind each count of the outbox: by delivery state,
and the mail that has waited longest. ``relay queue``, ``relay status`` and
the ``relay_outbox_messages`` gauge all read them here, so they cannot
disagree. The queries are SQL text run by a relay.store.plain Reader, so
`relay status` runs them without loading SQLAlchemy and the daemon runs the
very same text through its session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relay.store.plain import Reader, first, timestamp
from relay.store.states import DeliveryStatus

WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)

# The states are the enum's own constant values, not input: safe to write into the text.
_WAITING_SQL = ", ".join(f"'{state.value}'" for state in WAITING)

COUNTS = "SELECT status, COUNT(*) FROM outbox GROUP BY status"
OLDEST_WAITING = (
    f"SELECT id, created_at FROM outbox WHERE status IN ({_WAITING_SQL}) "
    "ORDER BY created_at, id LIMIT 1"
)


@dataclass(frozen=True)
class Waiting:
    outbox_id: int
    since: datetime


def counts(reader: Reader) -> dict[DeliveryStatus, int]:
    """How many outbox rows are in each state; every state is present, in the enum's order."""
    found = dict.fromkeys(DeliveryStatus, 0)
    for status, count in reader.rows(COUNTS):
        found[DeliveryStatus(status)] = int(count)
    return found


def oldest_waiting(reader: Reader) -> Waiting | None:
    """The row that has waited longest among those still WAITING, and since when."""
    row = first(reader, OLDEST_WAITING)
    since = None if row is None else timestamp(row[1])
    return None if row is None or since is None else Waiting(int(row[0]), since)
