"""What waits for a moderator: the one query behind every list of held mail.

Owns the held messages as lists show them (id, when it came, the pair, the
sender's role, subject, rule hits), oldest first, and the item the
moderators' and the leads' alerts list for each. `relay held`, `relay
review`, the moderator alert (relay.moderation.decisions) and the overdue
alert (relay.safeguarding.overdue) all read this query. It is SQL text run
by a relay.store.plain Reader, so `relay held` runs it without loading
SQLAlchemy and the daemon runs the very same text through its session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from relay.durations import format_duration
from relay.mail.addresses import pair_address
from relay.rules.base import Hit
from relay.store.plain import Reader, Row, timestamp
from relay.store.states import MessageStatus, Role

_HELD = (
    "SELECT messages.id, messages.received_at, pairs.token, participants.role, "
    "messages.subject, messages.hits "
    "FROM messages JOIN pairs ON pairs.id = messages.pair_id "
    "JOIN participants ON participants.id = messages.sender_id "
    f"WHERE messages.status = '{MessageStatus.HELD.value}'"
)
_OLDEST_FIRST = " ORDER BY messages.received_at, messages.id"


def reasons(hits: Iterable[Hit]) -> str:
    """The hits' reasons on one line, as every list of held mail shows them."""
    return "; ".join(hit.reason for hit in hits) or "-"


@dataclass(frozen=True)
class Held:
    id: int
    received_at: datetime
    pair_token: str
    sender_role: Role
    subject: str
    hits: tuple[Hit, ...]

    @classmethod
    def read(cls, row: Row) -> Held:
        received_at = timestamp(row[1])
        if received_at is None:
            raise ValueError(f"message {row[0]}: no received_at")
        hits = tuple(Hit.from_json(each) for each in json.loads(row[5] or "[]"))
        return cls(int(row[0]), received_at, row[2], Role(row[3]), row[4] or "", hits)

    @property
    def reasons(self) -> str:
        return reasons(self.hits)

    @property
    def rules(self) -> list[str]:
        return sorted({hit.rule for hit in self.hits})


def held_messages(
    reader: Reader, pair_token: str | None = None, rule: str | None = None
) -> list[Held]:
    """What waits, oldest first: of one pair, or flagged by one rule, if given."""
    if not pair_token:
        rows = reader.rows(_HELD + _OLDEST_FIRST)
    else:
        rows = reader.rows(_HELD + " AND pairs.token = :token" + _OLDEST_FIRST, token=pair_token)
    held = [Held.read(row) for row in rows]
    return [each for each in held if rule is None or rule in each.rules]


def alert_item(held: Held, domain: str, now: datetime) -> dict[str, object]:
    """A held message as the moderators' and the leads' alerts list it."""
    return {
        "id": held.id,
        "age": format_duration(now - held.received_at),
        "sender_role": held.sender_role.value,
        "pair": pair_address(held.pair_token, domain),
        "subject": held.subject or "(no subject)",
        "reasons": held.reasons,
    }
