"""The per-message statements run on the cursor send what SQLAlchemy would have sent.

relay.store.direct compiles each hot statement once and runs it on the DB-API
cursor. Each test here runs a statement both ways on the test's database
(SQLite, or PostgreSQL with RELAY_TEST_DATABASE_URL) and compares the SQL
text and parameters the driver received, or the rows that resulted; and
checks that a driver error still arrives as SQLAlchemy's exception.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, event, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from relay.config import Config
from relay.delivery.worker import _MARK_DELIVERED
from relay.settings import DatabaseSettings
from relay.store import counters, db
from relay.store.direct import Direct
from relay.store.directory import current_version
from relay.store.group_commit import GroupWriter
from relay.store.messages import (
    _INSERT_MESSAGE,
    _INSERT_OUTBOX,
    MESSAGES,
    OUTBOX,
    insert_message,
)
from relay.store.models import DirectoryVersion, UtcDateTime
from relay.store.states import DeliveryStatus, OutboxKind, utcnow
from tests.store_rows import message_row, stored_pair


@contextmanager
def _sent(store: db.Store) -> Iterator[list[tuple[str, Any]]]:
    """What the driver is given, as SQLAlchemy's own execution reports it."""
    seen: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, _comparable(parameters)))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _direct_arguments(direct: Direct, connection: Connection, rows: list[dict[str, Any]]) -> Any:
    form = direct._form(connection.dialect, many=len(rows) > 1)
    return form.sql, _comparable([form.arguments(row) for row in rows])


def _comparable(parameters: Any) -> Any:
    """psycopg's Binary wrapper compares by identity: compare what it wraps."""
    if isinstance(parameters, list):
        return [_comparable(each) for each in parameters]
    if isinstance(parameters, dict):
        return {key: getattr(value, "obj", value) for key, value in parameters.items()}
    return tuple(getattr(value, "obj", value) for value in parameters)


def test_inserts_and_the_delivered_update_send_what_sqlalchemy_sends(
    store: db.Store, config: Config
):
    pair = stored_pair(store, config)
    rows = [message_row(pair, number) for number in range(3)]
    keys = list(rows[0])
    with store.write_connection() as connection:
        connection.execute(_INSERT_MESSAGE, rows[0])  # the statement compiled once first
        with _sent(store) as seen:
            connection.execute(_INSERT_MESSAGE, rows[1:])
        sql, arguments = _direct_arguments(Direct(_INSERT_MESSAGE, keys), connection, rows[1:])
        assert seen == [(sql, arguments if len(arguments) > 1 else arguments[0])]
        message_id = connection.scalar(select(MESSAGES.c.id).limit(1))

        # An outbox row: kind, recipient, content, message_id given, the rest defaults.
        outbox = [
            {"kind": OutboxKind.FORWARD, "recipient": "x@example.org", "content": b"x"}
            | {"message_id": message_id}
            for _ in range(2)
        ]
        with _sent(store) as seen:
            connection.execute(_INSERT_OUTBOX, outbox)
        sql, arguments = _direct_arguments(
            Direct(_INSERT_OUTBOX, list(outbox[0])), connection, outbox
        )
        assert [statement for statement, _ in seen] == [sql]
        # next_attempt_at and created_at are the clock's: equal in all but their value.
        assert _without_times(seen[0][1]) == _without_times(arguments)

        delivered = [
            {"row_id": number, "attempt": 1, "claimer": "me", "now": utcnow()} for number in (1, 2)
        ]
        with _sent(store) as seen:
            connection.execute(_MARK_DELIVERED, delivered)
        sql, arguments = _direct_arguments(
            Direct(_MARK_DELIVERED, list(delivered[0])), connection, delivered
        )
        assert seen == [(sql, arguments)]


def _without_times(arguments: list[Any]) -> list[Any]:
    """The arguments with every date and time (as given, or as SQLite's text) made equal."""

    def plain(value: Any) -> Any:
        timelike = isinstance(value, datetime) or (isinstance(value, str) and value[:2] == "20")
        return "a time" if timelike else value

    if arguments and isinstance(arguments[0], dict):
        return [{key: plain(value) for key, value in row.items()} for row in arguments]
    return [tuple(plain(value) for value in row) for row in arguments]


def test_rows_written_on_the_cursor_read_back_as_sqlalchemy_wrote_them(
    store: db.Store, config: Config
):
    pair = stored_pair(store, config)
    first, second, third = (message_row(pair, number) for number in (1, 2, 3))
    direct = Direct(_INSERT_MESSAGE, list(second))
    with store.write_connection() as connection:
        first_id = connection.execute(_INSERT_MESSAGE, first).inserted_primary_key[0]
        second_id = direct.execute(connection, second)  # the new key, as SQLAlchemy gives it
        direct.executemany(connection, [third])
    with store.read_connection() as connection:
        stored = connection.execute(select(MESSAGES).order_by(MESSAGES.c.id)).all()
    assert [row.id for row in stored] == [first_id, second_id, second_id + 1]
    assert [dict(row._mapping) | {"id": 0} for row in stored] == [
        row | {"id": 0, "decided_at": None, "purged_at": None} for row in (first, second, third)
    ]


def test_several_rows_in_one_insert_read_back_as_sqlalchemy_wrote_them(
    store: db.Store, config: Config
):
    """On PostgreSQL, Direct.executemany writes an insert's rows as one multi-row INSERT."""
    pair = stored_pair(store, config)
    by_sqlalchemy = [message_row(pair, number) | {"id": 100 + number} for number in range(3)]
    by_cursor = [message_row(pair, number) | {"id": 197 + number} for number in range(3, 6)]
    outbox = [
        {"kind": OutboxKind.FORWARD, "recipient": f"{n}@example.org", "content": b"x" * n}
        for n in range(4)
    ]
    with store.write_connection() as connection:
        connection.execute(_INSERT_MESSAGE, by_sqlalchemy)
        Direct(_INSERT_MESSAGE, list(by_cursor[0])).executemany(connection, by_cursor)
        rows = [row | {"message_id": 200} for row in outbox]
        Direct(_INSERT_OUTBOX, list(rows[0])).executemany(connection, rows)
    with store.read_connection() as connection:
        stored = connection.execute(select(MESSAGES).order_by(MESSAGES.c.id)).all()
        queued = connection.execute(
            select(OUTBOX).where(OUTBOX.c.message_id == 200).order_by(OUTBOX.c.id)
        ).all()
    # The same columns, values and types either way; only the numbers told apart.
    written = [dict(row._mapping) for row in stored]
    blank = {"id": 0, "original_message_id": "", "relay_message_id": "", "received_at": None}
    assert [row | blank for row in written[:3]] == [row | blank for row in written[3:]]
    assert written[3:] == [row | {"decided_at": None, "purged_at": None} for row in by_cursor]
    # Serial ids in the order the rows were given, as an executemany gave them.
    assert [(row.recipient, row.content, row.message_id) for row in queued] == [
        (f"{n}@example.org", b"x" * n, 200) for n in range(4)
    ]
    assert [row.id for row in queued] == sorted(row.id for row in queued)


def test_only_a_plain_insert_is_sent_as_one_statement_of_many_rows() -> None:
    from relay.store.direct import _rows_together

    sql, names = _rows_together("INSERT INTO t (a, b) VALUES (%(a)s::INTEGER, %(b)s)", 3) or (
        "",
        (),
    )
    assert (
        sql == "INSERT INTO t (a, b) VALUES (%s::INTEGER, %s), (%s::INTEGER, %s), (%s::INTEGER, %s)"
    )
    assert names == ("a", "b")
    for other in (
        "UPDATE t SET a=%(a)s WHERE b=%(b)s",
        "INSERT INTO t (a) VALUES (%(a)s) RETURNING t.id",
        "INSERT INTO t (a) VALUES (%(a)s || '%')",
        "INSERT INTO t (a) SELECT %(a)s",
    ):
        assert _rows_together(other, 3) is None


# Every outcome a claimed row can get (delivered, deferred with its error and next
# attempt, failed), where it still carries the claim: the shape of _MARK_DELIVERED with
# the outcome's columns given per row too.
_OUTCOME = (
    update(OUTBOX)
    .where(
        OUTBOX.c.id == bindparam("row_id"),
        OUTBOX.c.status == DeliveryStatus.SENDING,
        OUTBOX.c.claimed_by == bindparam("claimer"),
        OUTBOX.c.attempts == bindparam("attempt"),
    )
    .values(
        status=bindparam("outcome"),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at", type_=UtcDateTime()),
        delivered_at=bindparam("now", type_=UtcDateTime()),
        claimed_by=None,
        lease_until=None,
    )
)


_LEASE = datetime(2030, 1, 1, 12, tzinfo=UTC)  # the same in both sets of rows


def _claimed_rows(connection: Connection, count: int) -> list[int]:
    """count outbox rows being sent: claimed by "me" on attempt 2 (two by someone else)."""
    ids = []
    for number in range(count):
        values = {"kind": OutboxKind.FORWARD, "recipient": f"{number}@example.org"}
        inserted = connection.execute(OUTBOX.insert().values(values | {"content": b"x"}))
        ids.append(inserted.inserted_primary_key[0])
    claimer = {ids[1]: "someone else", ids[-1]: "me"}  # the last: a later attempt's claim
    for id_ in ids:
        connection.execute(
            OUTBOX.update()
            .where(OUTBOX.c.id == id_)
            .values(
                status=DeliveryStatus.SENDING,
                claimed_by=claimer.get(id_, "me"),
                attempts=3 if id_ == ids[-1] else 2,
                lease_until=_LEASE,
                next_attempt_at=_LEASE,
            )
        )
    return ids


def _outcomes(ids: list[int], now: datetime) -> list[dict[str, Any]]:
    outcome = [
        (DeliveryStatus.DELIVERED, None, now, now),
        (DeliveryStatus.DEFERRED, "451 4.3.0 try later", now + timedelta(minutes=4), None),
        (DeliveryStatus.FAILED, "550 5.1.1 no such user", now, None),
        (DeliveryStatus.DEFERRED, "internal error: OSError", now + timedelta(minutes=8), None),
        (DeliveryStatus.DELIVERED, None, now, now + timedelta(seconds=1)),
        (DeliveryStatus.FAILED, "gave up", now, None),
    ]
    return [
        {"row_id": id_, "claimer": "me", "attempt": 2}
        | dict(zip(("outcome", "error", "next_at", "now"), outcome[number % 6], strict=True))
        for number, id_ in enumerate(ids)
    ]


def test_outcomes_written_together_leave_the_rows_one_statement_per_row_leaves(
    store: db.Store,
):
    """On PostgreSQL Direct.executemany writes an update's rows as one UPDATE ... FROM
    unnest(...); on SQLite as an executemany. Two alike sets of claimed rows get the
    same mixed outcomes, one row at a time through SQLAlchemy and all at once on the
    cursor: every column of every row ends the same (the rows whose claim is someone
    else's, or a later attempt's, untouched either way)."""
    now = utcnow()
    with store.write_connection() as connection:
        one_by_one, together = _claimed_rows(connection, 8), _claimed_rows(connection, 8)
        before = _outbox_rows(connection, together)
        for row in _outcomes(one_by_one, now):
            connection.execute(_OUTCOME, row)
        outcomes = _outcomes(together, now)
        Direct(_OUTCOME, list(outcomes[0])).executemany(connection, outcomes)
        delivered = [
            {"row_id": row["row_id"], "attempt": 2, "claimer": "me", "now": now} for row in outcomes
        ]
        # Already decided above: _MARK_DELIVERED, run both ways, changes none of them.
        Direct(_MARK_DELIVERED, list(delivered[0])).executemany(connection, delivered)
    with store.read_connection() as connection:
        first, second = _outbox_rows(connection, one_by_one), _outbox_rows(connection, together)
    assert first == second
    assert [row["status"] for row in second] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SENDING,  # someone else's claim
        DeliveryStatus.FAILED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SENDING,  # a later attempt's claim
    ]
    assert second[3]["last_error"] == "internal error: OSError"
    assert second[3]["next_attempt_at"] == now + timedelta(minutes=8)
    assert second[4]["delivered_at"] == now + timedelta(seconds=1)
    assert (second[1], second[7]) == (before[1], before[7])


def test_delivered_rows_written_together_leave_what_the_per_row_update_leaves(
    store: db.Store,
):
    """The worker's own statement: each claim's row delivered at its own time, the rows
    claimed by someone else, or on a later attempt, left as they were."""
    now = utcnow()
    with store.write_connection() as connection:
        one_by_one, together = _claimed_rows(connection, 5), _claimed_rows(connection, 5)

        def delivered(ids: list[int]) -> list[dict[str, Any]]:
            return [
                {"row_id": id_, "attempt": 2, "claimer": "me", "now": now + timedelta(seconds=n)}
                for n, id_ in enumerate(ids)
            ]

        for row in delivered(one_by_one):
            connection.execute(_MARK_DELIVERED, row)
        rows = delivered(together)
        Direct(_MARK_DELIVERED, list(rows[0])).executemany(connection, rows)
    with store.read_connection() as connection:
        first, second = _outbox_rows(connection, one_by_one), _outbox_rows(connection, together)
    assert first == second
    assert [row["delivered_at"] for row in second] == [
        now,
        None,
        now + timedelta(seconds=2),
        now + timedelta(seconds=3),
        None,
    ]


def _outbox_rows(connection: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The rows in the order of ids, each without what tells the two sets apart."""
    query = select(OUTBOX).where(OUTBOX.c.id.in_(ids))
    found = {row.id: dict(row._mapping) for row in connection.execute(query)}
    apart = {"id", "recipient", "created_at"}
    return [{key: value for key, value in found[id_].items() if key not in apart} for id_ in ids]


def test_only_an_update_with_one_where_is_sent_as_one_statement_of_many_rows() -> None:
    from relay.store.direct import _update_rows_together

    columns = (("row_id", "INTEGER"), ("now", "TIMESTAMP WITH TIME ZONE"))
    sql = "UPDATE t SET a=%(a)s, b=%(now)s WHERE t.id = %(row_id)s::INTEGER AND t.c = %(c)s"
    joined = _update_rows_together(sql, columns)
    assert joined == (
        'UPDATE t SET a=%s, b=relay_rows."now" FROM unnest(CAST(%s AS INTEGER[]),'
        " CAST(%s AS TIMESTAMP WITH TIME ZONE[]))"
        ' AS relay_rows ("row_id", "now") WHERE t.id = relay_rows."row_id"::INTEGER AND t.c = %s',
        ("a",),
        ("row_id", "now"),
        ("c",),
    )
    for other in (
        "UPDATE t SET a=%(a)s",
        "UPDATE t SET a=%(a)s FROM u WHERE t.id = %(row_id)s",
        "UPDATE t SET a=%(a)s WHERE t.id = %(row_id)s RETURNING t.id",
        "UPDATE t SET a=%(a)s WHERE t.id = %(row_id)s AND t.b LIKE '%'",
        "DELETE FROM t WHERE t.id = %(row_id)s",
    ):
        assert _update_rows_together(other, columns) is None


def test_counts_and_the_directory_version_answer_as_before(store: db.Store, config: Config):
    pair = stored_pair(store, config)
    with store.write_connection() as connection:
        connection.execute(_INSERT_MESSAGE, [message_row(pair, number) for number in range(4)])
    since = utcnow() - timedelta(hours=1)
    parameters = {"pair_id": pair.id, "sender_id": pair.mentor_id, "since": since}
    with store.read_connection() as connection:
        for shape in ((2, 20), (2, 0), (0, 20), (9, 20), (9, 3), (9, 10**9)):
            old_way = tuple(connection.execute(counters._counts_query(*shape), parameters).one())
            assert counters._counts(*shape).first(connection, parameters) == old_way
        assert counters.sender_counts(connection, pair.id, pair.mentor_id, since, 9, 20) == (4, 4)
        # Each count stops at its limit; a rate limit no flood reaches is a plain count.
        assert counters.sender_counts(connection, pair.id, pair.mentor_id, since, 2, 3) == (2, 3)
        assert counters.sender_counts(connection, pair.id, pair.mentor_id, since, 0, 10**9) == (
            0,
            4,
        )
        assert current_version(connection) == connection.scalar(
            select(DirectoryVersion.version).where(DirectoryVersion.id == 1)
        )


def test_a_driver_error_is_sqlalchemys_and_leaves_the_transaction_usable(
    store: db.Store, config: Config
):
    pair = stored_pair(store, config)
    row = message_row(pair, 7)
    direct = Direct(_INSERT_MESSAGE, list(row))
    with pytest.raises(IntegrityError), store.write_connection() as connection:
        direct.executemany(connection, [row, row])  # relay_message_id is unique
    with store.write_connection() as connection:  # rolled back; the next one works
        direct.executemany(connection, [row])
    with store.read_connection() as connection:
        stored = connection.scalars(select(MESSAGES.c.relay_message_id)).all()
    assert stored == [row["relay_message_id"]]


def test_a_group_commit_numbers_its_messages_as_the_database_would(store: db.Store, config: Config):
    """Rows written at the batch's end and rows written at once, interleaved in one batch:
    each id names the row it was returned for; on SQLite, the ids SQLite itself gives
    (max + 1, in order), so nothing about numbering changed when rows were deferred."""
    pair = stored_pair(store, config)
    with store.write_connection() as connection:
        connection.execute(_INSERT_MESSAGE, message_row(pair, 0))
        before = connection.scalar(select(func.max(MESSAGES.c.id)))
        connection.execute(MESSAGES.delete().where(MESSAGES.c.id == before))  # a gap at the top
    writer = GroupWriter(store)
    started, release = threading.Event(), threading.Event()

    def hold(_connection: Connection) -> None:
        started.set()
        assert release.wait(10)

    def piece(number: int) -> Callable[[Connection], int]:
        def work(connection: Connection) -> int:
            return insert_message(connection, message_row(pair, number), deferred=number % 3 != 0)

        return work

    writer.submit(hold)
    assert started.wait(10)
    futures = [writer.submit(piece(number)) for number in range(1, 8)]
    release.set()
    ids = [future.result(30) for future in futures]
    writer.close()
    assert writer.batches == 2  # the hold, then all seven in one commit
    with store.read_connection() as connection:
        query = select(MESSAGES.c.id, MESSAGES.c.original_message_id)
        stored = {id_: original for id_, original in connection.execute(query)}
    assert [stored[id_] for id_ in ids] == [f"<{number}@example.org>" for number in range(1, 8)]
    if store.is_sqlite:
        assert ids == list(range(before, before + 7))  # SQLite reuses the top id, as ever


@pytest.mark.sqlite
def test_a_write_lock_held_elsewhere_is_sqlalchemys_operational_error(tmp_path: Path):
    """BEGIN IMMEDIATE runs on the cursor; a lock it cannot get within busy_timeout is
    still the error the callers (451, the group writer's retry) have always seen."""
    path = tmp_path / "locked.db"
    store = db.open_store(
        f"sqlite:///{path}", DatabaseSettings(busy_timeout=timedelta(seconds=0.2))
    )
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with (
            pytest.raises(OperationalError, match="database is locked"),
            store.write_connection(),
        ):
            pass
        other.execute("COMMIT")
        with store.write_connection() as connection:  # and the lock, once free, is taken
            assert current_version(connection) >= 0
    finally:
        other.close()
        store.dispose()
