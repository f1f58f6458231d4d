"""Which held messages are overdue: the one query behind every answer to it.

A message held longer than [safeguarding] decide_within is overdue.
`relay held` marks those messages, `relay status` counts them and the daemon
alerts the leads about them (relay.safeguarding.overdue); all three read this
one query. It is SQL text run by a relay.store.plain Reader, so `relay status`
runs it without loading SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime

from relay.settings import SafeguardingSettings
from relay.store.plain import Reader
from relay.store.states import MessageStatus, utcnow

OVERDUE_HELD = (
    f"SELECT id FROM messages WHERE status = '{MessageStatus.HELD.value}' AND received_at < :cutoff"
)


def overdue_ids(
    reader: Reader, settings: SafeguardingSettings, now: datetime | None = None
) -> set[int]:
    """Held messages undecided for longer than decide_within."""
    cutoff = (now or utcnow()) - settings.decide_within
    return {int(message_id) for (message_id,) in reader.rows(OVERDUE_HELD, cutoff=cutoff)}
