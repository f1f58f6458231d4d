"""`relay queue`, `relay queue list` and `relay queue retry`, through click's CliRunner.

The outbox rows are real ones (the introductions a new pair gets); their
states are set the way a worker would leave them after failed attempts.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from relay.cli import cli
from relay.store import db
from relay.store.models import DeliveryStatus, OutboxEntry, utcnow
from tests.conftest import PairInfo


@pytest.fixture
def run(config_path: Path):
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config_path), *args])

    return invoke


def intro_ids(store: db.Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(OutboxEntry.id).order_by(OutboxEntry.id)))


def set_state(store: db.Store, outbox_id: int, status: DeliveryStatus, **values: object) -> None:
    with store.session() as session:
        session.execute(
            update(OutboxEntry).where(OutboxEntry.id == outbox_id).values(status=status, **values)
        )


def status_of(store: db.Store, outbox_id: int) -> OutboxEntry:
    with store.session() as session:
        row = session.get(OutboxEntry, outbox_id)
        assert row is not None
        return row


def test_summary_counts_states_and_names_the_oldest_waiting(run, store: db.Store, pair: PairInfo):
    first, second = intro_ids(store)
    set_state(store, first, DeliveryStatus.FAILED, last_error="550 5.1.1 no such user")
    with store.session() as session:
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == second)
            .values(created_at=utcnow() - timedelta(hours=3))
        )
    result = run("queue")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines()]
    assert ["queued", "1"] in lines
    assert ["failed", "1"] in lines
    assert ["delivered", "0"] in lines
    assert f"oldest waiting: outbox {second}, 3h old, queued, next attempt now" in result.output


def test_summary_of_an_empty_queue(run, store: db.Store):
    result = run("queue")
    assert result.exit_code == 0, result.output
    assert "nothing waiting" in result.output


def test_list_shows_last_error_and_next_attempt_and_filters_by_state(
    run, store: db.Store, pair: PairInfo
):
    first, second = intro_ids(store)
    set_state(
        store,
        first,
        DeliveryStatus.DEFERRED,
        attempts=3,
        last_error="451 4.3.0 try later",
        next_attempt_at=utcnow() + timedelta(minutes=20, seconds=30),
    )
    set_state(store, second, DeliveryStatus.FAILED, attempts=1, last_error="550 5.1.1 no such user")

    everything = run("queue", "list")
    assert everything.exit_code == 0, everything.output
    assert "LAST ERROR" in everything.output
    assert len(everything.output.splitlines()) == 3  # header and two rows

    deferred = run("queue", "list", "--state", "deferred")
    assert deferred.exit_code == 0, deferred.output
    rows = deferred.output.splitlines()[1:]
    assert len(rows) == 1
    assert rows[0].split()[:2] == [str(first), "deferred"]
    assert "in 20m" in rows[0]
    assert "451 4.3.0 try later" in rows[0]

    failed = run("queue", "list", "--state", "failed")
    rows = failed.output.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[:2] == [str(second), "failed"]
    assert "550 5.1.1 no such user" in rows[0]

    assert run("queue", "list", "--state", "delivered").output.strip() == "(none)"
    assert run("queue", "list", "--state", "bogus").exit_code == 2


def test_json_rows_are_the_stored_rows(run, store: db.Store, pair: PairInfo):
    """The commands read the outbox as SQL text (relay.ops.outbox); JSON shows each field
    as the ORM reads it: state, kind, template, recipient, tries, times, last error."""
    first, second = intro_ids(store)
    set_state(
        store,
        first,
        DeliveryStatus.DEFERRED,
        attempts=2,
        last_error="451 4.3.0 try later",
        created_at=utcnow() - timedelta(hours=1),
        next_attempt_at=utcnow() + timedelta(minutes=5),
    )
    set_state(store, second, DeliveryStatus.FAILED, attempts=1, last_error="550 5.1.1 no")
    with store.session() as session:
        expected = [
            {
                "id": row.id,
                "state": row.status.value,
                "kind": row.kind.value,
                "notice": row.notice,
                "message": row.message_id,
                "to": row.recipient,
                "tries": row.attempts,
                "created_at": row.created_at.isoformat(timespec="seconds"),
                "next_attempt_at": row.next_attempt_at.isoformat(timespec="seconds")
                if row.status is DeliveryStatus.DEFERRED
                else None,
                "last_error": row.last_error,
            }
            for row in session.scalars(select(OutboxEntry).order_by(OutboxEntry.id))
        ]

    listed = json.loads(run("queue", "list", "--json").output)
    summary = json.loads(run("queue", "--json").output)

    assert listed == {"total": 2, "entries": expected}
    assert expected[0]["notice"] == "intro" and expected[0]["next_attempt_at"] is not None
    assert summary["oldest_waiting"] == expected[0]
    assert summary["counts"] == {
        "queued": 0,
        "sending": 0,
        "deferred": 1,
        "delivered": 0,
        "failed": 1,
    }


def test_list_limit_says_how_many_more(run, store: db.Store, pair: PairInfo):
    result = run("queue", "list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 3
    assert "1 more" in result.output


def test_retry_named_entries(run, store: db.Store, pair: PairInfo):
    first, second = intro_ids(store)
    long_ago = utcnow() - timedelta(days=6)
    set_state(
        store,
        first,
        DeliveryStatus.FAILED,
        attempts=9,
        last_error="451 gave up",
        next_attempt_at=long_ago,
        created_at=long_ago,
    )
    set_state(store, second, DeliveryStatus.DELIVERED, attempts=1)

    result = run("queue", "retry", str(first))
    assert result.exit_code == 0, result.output
    assert f"outbox {first}: will be retried" in result.output
    retried = status_of(store, first)
    assert retried.status is DeliveryStatus.QUEUED
    assert retried.attempts == 0  # the backoff starts over at retry_first
    assert retried.next_attempt_at <= utcnow()
    assert retried.retry_since is not None and retried.retry_since > long_ago

    refused = run("queue", "retry", str(second), "999999")
    assert refused.exit_code == 1
    assert f"outbox {second}: is delivered" in refused.output
    assert "outbox 999999: no such entry" in refused.output
    assert status_of(store, second).status is DeliveryStatus.DELIVERED


def test_retry_all_failed(run, store: db.Store, pair: PairInfo):
    first, second = intro_ids(store)
    set_state(store, first, DeliveryStatus.FAILED, last_error="550 no")
    set_state(store, second, DeliveryStatus.FAILED, last_error="550 no")
    result = run("queue", "retry", "--all-failed")
    assert result.exit_code == 0, result.output
    assert "2 failed entries will be retried" in result.output
    assert {status_of(store, each).status for each in (first, second)} == {DeliveryStatus.QUEUED}
    again = run("queue", "retry", "--all-failed")
    assert "0 failed entries will be retried" in again.output


def test_retry_needs_ids_or_all_failed(run, store: db.Store):
    assert run("queue", "retry").exit_code == 2
    both = run("queue", "retry", "1", "--all-failed")
    assert both.exit_code == 2
    assert "one of the two" in both.output
