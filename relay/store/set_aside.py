"""Mail set aside: for a pair, but with a From that names no participant of it.

Owns the set_aside table's rows: intake adds one in its commit (the sender
got the same 250 as anyone, so the mail is kept, never relayed and never
answered), and `relay set-aside` lists them for moderators. Nothing here is
ever sent to a participant.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.store.models import Pair, SetAside
from relay.store.states import MessageStatus


def set_aside(
    session: Session,
    pair: Pair,
    raw: bytes,
    *,
    envelope_from: str,
    from_address: str,
    peer: str,
    reason: str,
    outcome: MessageStatus,
) -> SetAside:
    row = SetAside(
        envelope_from=envelope_from[:320],
        from_address=from_address[:320],
        peer=peer[:64],
        reason=reason,
        outcome=outcome.value,
        raw=raw,
        size=len(raw),
    )
    row.pair = pair
    session.add(row)
    return row


def list_set_aside(session: Session, limit: int = 100) -> list[SetAside]:
    return list(session.scalars(select(SetAside).order_by(SetAside.id.desc()).limit(limit)))
