"""The messages held on arrival in the period, with what became of each: computed once.

Owns the one query that finds them through the status and decided_at indexes
(never by reading every message) and keeps them in a temporary table for the
moderation figures and the per-pair held counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    case,
    select,
    union,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.reports.sql import Dialect, filled_temporary_table
from relay.store.base import UtcDateTime
from relay.store.models import Message, ModerationAction
from relay.store.states import MessageStatus, ModerationVerdict


def _held_table() -> Table:
    return Table(
        "report_held",
        MetaData(),
        Column("id", Integer),
        Column("pair_id", Integer),
        Column("hits", Text),
        Column("received_at", UtcDateTime),
        Column("status", String(16)),
        Column("outcome", String(20)),  # approved, approved_redacted, rejected, discarded, waiting
        Column("hours", Float),  # hold to decision; NULL while waiting
        prefixes=["TEMPORARY"],
    )


@contextmanager
def held_messages(
    session: Session, dialect: Dialect, period: Period, selection: Subquery
) -> Iterator[Table]:
    with filled_temporary_table(session, _held_table(), _held(dialect, period, selection)) as table:
        yield table


def _held(dialect: Dialect, period: Period, selection: Subquery) -> Select[Any]:
    # Held now or decided by a moderator: each side of the union is one index's lookup.
    candidates = union(
        select(Message.id).where(Message.status == MessageStatus.HELD),
        select(Message.id).where(Message.decided_at.is_not(None)),
    ).subquery()
    decided = Message.decided_at.is_not(None) & (Message.decided_at < period.until)
    outcome = case(
        (~decided, "waiting"),
        (
            (ModerationAction.verdict == ModerationVerdict.APPROVE) & ModerationAction.redacted,
            "approved_redacted",
        ),
        (ModerationAction.verdict == ModerationVerdict.APPROVE, "approved"),
        (ModerationAction.verdict == ModerationVerdict.REJECT, "rejected"),
        else_="discarded",
    )
    hours = dialect.hours_between(Message.decided_at, Message.received_at)
    return (
        select(
            Message.id,
            Message.pair_id,
            Message.hits,
            Message.received_at,
            Message.status,
            outcome,
            case((decided, hours)),
        )
        .outerjoin(ModerationAction, ModerationAction.message_id == Message.id)
        .where(
            Message.id.in_(select(candidates.c.id)),
            Message.pair_id.in_(select(selection.c.id)),
            Message.received_at >= period.start,
            Message.received_at < period.until,
        )
    )
