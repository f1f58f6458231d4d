"""The rows intake writes per message, in SQLAlchemy Core (no ORM on the hot path).

Owns the inserts a received message becomes (the transcript row, its forward
or notice in the outbox) and the thread lookup its forward needs. Everything
here takes a Connection inside the caller's transaction: a read transaction
for the lookup, the group writer's transaction for the inserts. The counts
the rules read live in relay.store.counters.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, func, insert, or_, select, text

from relay.store.direct import Direct
from relay.store.group_commit import current_batch, later
from relay.store.models import Message, OutboxEntry

# Built once: a statement object that is used again skips SQLAlchemy's cache-key
# work for a new one, which costs more than SQLite's insert itself.
MESSAGES = cast(Table, Message.__table__)
OUTBOX = cast(Table, OutboxEntry.__table__)
_INSERT_MESSAGE = insert(MESSAGES)
_INSERT_OUTBOX = insert(OUTBOX)
_LAST_MESSAGE_ID = Direct(select(func.max(MESSAGES.c.id)))
_RESERVE_MESSAGE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, :count)"
)


_THREAD_ROWS = select(
    MESSAGES.c.sender_id,
    MESSAGES.c.recipient_id,
    MESSAGES.c.relay_message_id,
    MESSAGES.c.original_message_id,
).where(
    MESSAGES.c.pair_id == bindparam("pair_id"),
    or_(
        MESSAGES.c.relay_message_id.in_(bindparam("relay_ids", expanding=True)),
        MESSAGES.c.original_message_id.in_(bindparam("original_ids", expanding=True)),
    ),
)


def thread_rows(
    connection: Connection, pair_id: int, wanted: Iterable[str]
) -> Sequence[Row[int, int, str, str | None]]:
    """This pair's messages known by any of the wanted Message-IDs (relay's or original)."""
    ids = list(wanted)
    parameters = {"pair_id": pair_id, "relay_ids": ids, "original_ids": ids}
    return connection.execute(_THREAD_ROWS, parameters).all()


def insert_message(
    connection: Connection, values: Mapping[str, Any], deferred: bool = False
) -> int:
    """The new message's id. deferred: in a group commit, the id is taken ahead and the row
    is written at the batch's end with the others, in one executemany
    (relay.store.group_commit.later); nothing may read the row before then."""
    batch = current_batch(connection)
    if batch is not None and connection.dialect.name == "sqlite":
        # SQLite numbers a new row max(id) + 1 (the table has no AUTOINCREMENT), and the
        # group commit holds the database's one write lock (BEGIN IMMEDIATE): the batch
        # numbers its rows itself, the same ids in the same order. Every message row of
        # the batch takes its id here, or one written now could take one reserved ahead.
        message_id = _next_sqlite_id(connection, batch.reserved)
        row = {**values, "id": message_id}
        if deferred:
            later(connection, _INSERT_MESSAGE, row)
        else:
            _insert(tuple(row)).execute(connection, row)
        return message_id
    if deferred and batch is not None and batch.size > 1:
        message_id = _reserved_id(connection, batch.reserved, batch.size)
        later(connection, _INSERT_MESSAGE, {**values, "id": message_id})
        return message_id
    return int(_insert(tuple(values)).execute(connection, values))


def insert_outbox(
    connection: Connection, values: Mapping[str, Any], deferred: bool = False
) -> None:
    """deferred: written at the end of the group commit, with the others (one statement)."""
    if deferred:
        later(connection, _INSERT_OUTBOX, dict(values))
    else:
        _insert(tuple(values), outbox=True).execute(connection, values)


@functools.cache
def _insert(keys: tuple[str, ...], outbox: bool = False) -> Direct:
    # Per set of columns given: a handful (with or without id, with or without notice).
    return Direct(_INSERT_OUTBOX if outbox else _INSERT_MESSAGE, keys)


def _next_sqlite_id(connection: Connection, reserved: dict[str, list[int]]) -> int:
    ids = reserved.setdefault("messages", [])
    if not ids:
        last = _LAST_MESSAGE_ID.first(connection, {})
        ids.append(int(last[0] or 0) if last is not None else 0)
    ids[0] += 1
    return ids[0]


def _reserved_id(connection: Connection, reserved: dict[str, list[int]], count: int) -> int:
    # One round trip reserves ids for the whole batch; the sequence never gives one twice,
    # so ids left over (a batch that failed, pieces that were not forwards) are only gaps.
    ids = reserved.setdefault("messages", [])
    if not ids:
        ids.extend(connection.scalars(_RESERVE_MESSAGE_IDS, {"count": count}).all()[::-1])
    return int(ids.pop())
