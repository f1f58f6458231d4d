"""The report's two processes read one state of the database.

relay report reads its reply times and prompts in a second process while the
first reads the other tables (relay.reports.parallel); both must see the
same moment, or a message landing mid-report would be counted by one table
and not another. The tests let a commit try to land between the two first
reads, on a real SQLite file and a real PostgreSQL, and make the second
process fail and die, as a bug or the OOM killer would.
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.reports import parallel
from relay.store import db, registry, snapshots
from relay.store.models import Participant
from relay.store.states import Role


def participants(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Participant)) or 0)


def test_a_commit_between_the_two_first_reads_is_seen_by_neither(store: db.Store) -> None:
    # Other processes, as far as SQLite and PostgreSQL can tell: stores of their own.
    writing, reading = db.Store(store.url), db.Store(store.url)

    def write() -> None:
        with writing.session() as session:
            registry.add_participant(session, "late@example.org", "Late", Role.MENTEE)

    writer = threading.Thread(target=write)
    with ExitStack() as open_sessions:
        open_sessions.callback(writing.dispose)
        open_sessions.callback(reading.dispose)
        first = open_sessions.enter_context(store.read_session())
        with snapshots.exported(store, first) as snapshot:
            writer.start()
            writer.join(timeout=0.5)
            if store.is_sqlite:
                # The shared snapshot holds SQLite's write lock until both have read.
                assert writer.is_alive()
            second = open_sessions.enter_context(reading.read_session())
            snapshots.join(second, snapshot)
        writer.join(timeout=30)
        assert not writer.is_alive()
        assert participants(first) == participants(second) == 0
    with store.read_session() as after:
        assert participants(after) == 1


def count_participants(session: Session) -> int:
    return participants(session)


def fail(session: Session) -> int:
    raise ValueError("no such table: the_pass")


def die(session: Session) -> int:
    os._exit(3)


def test_the_second_process_gives_its_result(store: db.Store) -> None:
    with (
        store.read_session() as session,
        parallel.beside(store, session, count_participants) as pending,
    ):
        assert pending.result() == participants(session) == 0


@pytest.mark.parametrize(
    ("work", "error"),
    [
        (fail, "the report's second process failed: ValueError: no such table: the_pass"),
        (die, "the report's second process ended without an answer (exit status 3)"),
    ],
)
def test_a_second_process_that_fails_or_dies_is_one_clear_error(
    store: db.Store, work: parallel.Work[int], error: str
) -> None:
    with (
        pytest.raises(parallel.ParallelWorkError) as raised,
        store.read_session() as session,
        parallel.beside(store, session, work) as pending,
    ):
        pending.result()
    assert str(raised.value) == error
