"""Mail set aside: for a pair, but with a From that names no participant of it.

Owns the set_aside table's rows: intake adds one in its commit (the sender
got the same 250 as anyone, so the mail is kept, never relayed and never
answered), and `relay set-aside` lists them for moderators. Nothing here is
ever sent to a participant.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.orm import Session

from relay.store.models import SetAside
from relay.store.states import MessageStatus, utcnow

_INSERT = insert(cast(Table, SetAside.__table__))


def set_aside_row(
    pair_id: int,
    raw: bytes,
    *,
    envelope_from: str,
    from_address: str,
    peer: str,
    reason: str,
) -> dict[str, Any]:
    """The row's column values but the outcome, known once the whole message is decided."""
    return {
        "pair_id": pair_id,
        "envelope_from": envelope_from[:320],
        "from_address": from_address[:320],
        "peer": peer[:64],
        "reason": reason,
        "raw": raw,
        "size": len(raw),
        "received_at": utcnow(),
    }


def insert_set_aside(
    connection: Connection, values: dict[str, Any], outcome: MessageStatus
) -> None:
    """Inside intake's group commit; outcome: what the authentication action said."""
    connection.execute(_INSERT, {**values, "outcome": outcome.value})


def list_set_aside(session: Session, limit: int = 100) -> list[SetAside]:
    return list(session.scalars(select(SetAside).order_by(SetAside.id.desc()).limit(limit)))
