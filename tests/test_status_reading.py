"""`relay status` reads without SQLAlchemy, and says the same as the full path would.

The command reads over a plain sqlite3 or psycopg connection when the
database is one it is sure about (relay.store.plain), and otherwise opens it
through relay.store.db like every other command: a database behind head is
refused with the usual line, a new empty SQLite file is created, a database
that cannot be reached is one "Error:" line without the password. Both paths
run the same SQL text; here they must give the same figures, and the
figures must be those of the rows.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relay.cli import cli
from relay.config import Config, load_config
from relay.ops import status
from relay.store import db
from relay.store.models import Message, OutboxEntry
from relay.store.plain import PlainReader, SqlAlchemyReader, plain_reader
from relay.store.states import DeliveryStatus, MessageStatus, utcnow
from tests.conftest import free_port, make_pair, write_config


def relay(config_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config_path), *args])


def seed(config: Config) -> datetime:
    """A pair whose two introductions are one delivered and one deferred for 2 hours,
    a message held for 30 hours (past the default decide_within of 24) and one
    held for a minute less than 24 (not yet overdue: the times compare exactly).
    Returns when the delivered one was delivered."""
    store = db.Store(config.database.url)
    db.upgrade(store)
    make_pair(store, config)
    now = utcnow()
    delivered_at = now - timedelta(minutes=5)
    try:
        with store.session() as session:
            first, second = session.query(OutboxEntry).order_by(OutboxEntry.id).all()
            first.status, first.delivered_at = DeliveryStatus.DELIVERED, delivered_at
            second.status, second.created_at = DeliveryStatus.DEFERRED, now - timedelta(hours=2)
            for number, age in enumerate((timedelta(hours=30), timedelta(hours=24, minutes=-1))):
                session.add(
                    Message(
                        pair_id=1,
                        sender_id=1,
                        recipient_id=2,
                        status=MessageStatus.HELD,
                        raw=b"Subject: x\r\n\r\nheld\r\n",
                        size=20,
                        relay_message_id=f"<held-{number}@relay.test>",
                        source="smtp",
                        received_at=now - age,
                    )
                )
    finally:
        store.dispose()
    return delivered_at


def test_status_figures_are_the_rows_on_both_paths(tmp_path: Path, database_url: str):
    config = load_config(write_config(tmp_path, database_url))
    delivered_at = seed(config)

    with plain_reader(config.database) as plain:
        assert isinstance(plain, PlainReader)  # this database takes the plain path
        by_plain = status.collect(plain, config).as_json()
    store = db.open_store(config.database.url)
    try:
        with store.read_session() as session:
            by_sqlalchemy = status.collect(SqlAlchemyReader(session), config).as_json()
    finally:
        store.dispose()

    for report in (by_plain, by_sqlalchemy):
        assert report["outbox"] == {
            "queued": 0,
            "sending": 0,
            "deferred": 1,
            "delivered": 1,
            "failed": 0,
        }
        assert 2 * 3600 <= report["oldest_waiting_seconds"] < 2 * 3600 + 60
        assert 30 * 3600 <= report["oldest_held_seconds"] < 30 * 3600 + 60
        assert report["overdue_held"] == 1
        assert report["last_delivery"] == delivered_at.isoformat()
        assert any("waited 7" in problem for problem in report["problems"])
    assert {k: v for k, v in by_plain.items() if not k.endswith("_seconds")} == {
        k: v for k, v in by_sqlalchemy.items() if not k.endswith("_seconds")
    }
    shown = relay(tmp_path / "relay.toml", "status", "--json")
    assert shown.exit_code == 1 and json.loads(shown.output)["outbox"] == by_plain["outbox"]


def test_status_on_a_database_behind_head_says_to_upgrade(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    store = db.Store(database_url)
    db.upgrade(store, "0001")
    store.dispose()

    result = relay(path, "status")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "is at revision 0001" in result.stderr and "relay db upgrade" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.sqlite
def test_status_on_an_empty_sqlite_file_creates_the_schema_like_every_command(tmp_path: Path):
    (tmp_path / "relay.db").write_bytes(b"")
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'relay.db'}")

    result = relay(path, "status")

    assert result.exit_code == 1, result.output  # no daemon runs
    assert "outbox:           queued 0" in result.output
    store = db.Store(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        assert db.current_revision(store) == db.head_revision(store)
    finally:
        store.dispose()


@pytest.mark.sqlite
def test_status_on_a_missing_sqlite_file_says_so_and_creates_nothing(tmp_path: Path):
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'typo.db'}")

    result = relay(path, "status")

    assert result.exit_code == 1 and "typo.db does not exist" in result.stderr
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("query", ["", "?application_name=relay"])
def test_status_with_postgresql_unreachable_is_an_error_without_the_password(
    tmp_path: Path, query: str
):
    # Nothing listens on the port: refused at once, on the plain path ("") and the full one.
    url = f"postgresql+psycopg://relay:s3cret@127.0.0.1:{free_port()}/relay{query}"
    path = write_config(tmp_path, url)

    result = relay(path, "status")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot open the database postgresql+psycopg://relay:***@"
    )
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_a_query_that_fails_on_the_plain_path_is_one_error_line(tmp_path: Path, database_url: str):
    # The pid file names a live process (this one), so status reads the heartbeat table.
    (tmp_path / "relay.pid").write_text(f"{os.getpid()}\n")
    path = write_config(tmp_path, database_url, daemon='pid_file = "relay.pid"')
    store = db.Store(database_url)
    db.upgrade(store)
    # A schema at head whose table the status reads is gone: the driver's own error.
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE daemon_health")
    store.dispose()

    result = relay(path, "status")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: database: ") and "daemon_health" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
