"""The counts intake's rules and notices read: a sender's earlier mail, notices sent.

Owns the queries (each answered from an index on messages or outbox), in SQLAlchemy
Core on a Connection inside the caller's transaction: a read transaction for
the rules' counts, the group writer's transaction for the held-notice cap.
Mail whose From was not authenticated (messages.unverified) is not counted
as the participant's: it may not be theirs, and counting it would let spoofed
mail use up a participant's new-pair hold or trip the rate rule for them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, false, func, select
from sqlalchemy.orm import Session

from relay.store.direct import Direct
from relay.store.models import Message, OutboxEntry, UtcDateTime
from relay.store.states import MessageStatus

MESSAGES = cast(Table, Message.__table__)
# A message refused by a rule or a moderator was never passed on: it does not use
# up one of a new pair's first, watched-over messages.
NOT_PASSED_ON = (MessageStatus.REJECTED, MessageStatus.DISCARDED)


@functools.cache
def _counts(in_pair_up_to: int, count_recent: bool) -> Direct:
    # Once per message, so run on the cursor (relay.store.direct).
    return Direct(_counts_query(in_pair_up_to, count_recent))


@functools.cache
def _counts_query(in_pair_up_to: int, count_recent: bool) -> Select[Any]:
    verified = MESSAGES.c.unverified == false()
    columns = []
    if in_pair_up_to > 0:
        earlier = (
            select(MESSAGES.c.id)
            .where(
                MESSAGES.c.pair_id == bindparam("pair_id"),
                MESSAGES.c.sender_id == bindparam("sender_id"),
                # NOT IN written out: an IN list is an "expanding" parameter, which
                # SQLAlchemy renders into the SQL text again on every execution.
                *(MESSAGES.c.status != status for status in NOT_PASSED_ON),
                verified,
            )
            .limit(in_pair_up_to)
            .subquery()
        )
        columns.append(select(func.count()).select_from(earlier).scalar_subquery())
    if count_recent:
        recent = select(func.count()).where(
            MESSAGES.c.sender_id == bindparam("sender_id"),
            MESSAGES.c.received_at >= bindparam("since", type_=UtcDateTime()),
            verified,
        )
        columns.append(recent.scalar_subquery())
    return select(*columns)


def sender_counts(
    connection: Connection,
    pair_id: int,
    sender_id: int,
    since: datetime,
    in_pair_up_to: int,
    count_recent: bool,
) -> tuple[int, int]:
    """(the sender's messages in this pair, the sender's messages anywhere since `since`).

    The first count stops at in_pair_up_to (the rules only ask whether a sender
    has written that many yet), so a long-running pair costs no more than a new
    one; 0 or count_recent=False skips a count the rules do not use. Both
    counts come back from one statement.
    """
    if in_pair_up_to <= 0 and not count_recent:
        return 0, 0
    counts = _counts(max(in_pair_up_to, 0), count_recent)
    parameters = {"pair_id": pair_id, "sender_id": sender_id, "since": since}
    row = counts.first(connection, parameters)
    assert row is not None  # a SELECT of scalar subqueries has one row
    values = [int(value or 0) for value in row]
    in_pair = values.pop(0) if in_pair_up_to > 0 else 0
    return in_pair, values.pop(0) if count_recent else 0


def notices_since(
    connection: Connection | Session, notice: str, recipient: str, since: datetime
) -> int:
    query = select(func.count(OutboxEntry.id)).where(
        OutboxEntry.notice == notice,
        OutboxEntry.recipient == recipient,
        OutboxEntry.created_at >= since,
    )
    return int(connection.scalar(query) or 0)
