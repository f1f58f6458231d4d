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
# Above this limit the rate count is a plain count: stopping costs about twice as much per
# row counted (a LIMIT subquery; 3,000 rows: 199 against 106 us on SQLite, 540 against 479
# on PostgreSQL), so it only pays for a flood well past the limit, and no flood within an
# hour is that far past a limit this high.
STOP_AT_MOST = 10_000


@functools.cache
def _counts(in_pair_up_to: int, recent_up_to: int) -> Direct:
    # Once per message, so run on the cursor (relay.store.direct).
    return Direct(_counts_query(in_pair_up_to, recent_up_to))


@functools.cache
def _counts_query(in_pair_up_to: int, recent_up_to: int) -> Select[Any]:
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
    if recent_up_to > 0:
        recent_where = (
            MESSAGES.c.sender_id == bindparam("sender_id"),
            MESSAGES.c.received_at >= bindparam("since", type_=UtcDateTime()),
            verified,
        )
        if recent_up_to > STOP_AT_MOST:
            columns.append(select(func.count()).where(*recent_where).scalar_subquery())
        else:
            # Stopped at the limit, as the count above is: unbounded, a flood from one
            # sender made each of its messages count every earlier one, a cost that grew
            # with the flood (bench/rate_count.py).
            recent = select(MESSAGES.c.id).where(*recent_where).limit(recent_up_to).subquery()
            columns.append(select(func.count()).select_from(recent).scalar_subquery())
    return select(*columns)


def sender_counts(
    connection: Connection,
    pair_id: int,
    sender_id: int,
    since: datetime,
    in_pair_up_to: int,
    recent_up_to: int,
) -> tuple[int, int]:
    """(the sender's messages in this pair, the sender's messages anywhere since `since`).

    Each count stops at its limit (the rules only ask whether a sender has
    written that many yet), so a long-running pair costs no more than a new one
    and the thousandth message of a flood no more than the twenty-first; a limit
    of 0 skips a count the rules do not use. Both counts come back from one
    statement.
    """
    in_pair_up_to, recent_up_to = max(in_pair_up_to, 0), max(recent_up_to, 0)
    if not in_pair_up_to and not recent_up_to:
        return 0, 0
    counts = _counts(in_pair_up_to, recent_up_to)
    parameters = {"pair_id": pair_id, "sender_id": sender_id, "since": since}
    row = counts.first(connection, parameters)
    assert row is not None  # a SELECT of scalar subqueries has one row
    values = [int(value or 0) for value in row]
    in_pair = values.pop(0) if in_pair_up_to else 0
    return in_pair, values.pop(0) if recent_up_to else 0


def notices_since(
    connection: Connection | Session, notice: str, recipient: str, since: datetime
) -> int:
    query = select(func.count(OutboxEntry.id)).where(
        OutboxEntry.notice == notice,
        OutboxEntry.recipient == recipient,
        OutboxEntry.created_at >= since,
    )
    return int(connection.scalar(query) or 0)
