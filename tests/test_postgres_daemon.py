"""The daemon's PostgreSQL connections (issue 14): LISTEN/NOTIFY, and pooled ones cut.

LISTEN/NOTIFY: commands wake every daemon on the database.

Two daemons share one PostgreSQL database, each with its own pid file and so
its own host-local wake-up socket, which the command never reaches (as for a
daemon on another host). Their poll is 60 s; the 10 s bounds below are hang
guards far inside it, so passing proves the notification, not a speed.

The pool checks a connection that sat idle before using it (instead of a
ping on every checkout), so a connection cut while idle costs no client a 451.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from relay.cli import cli
from relay.config import load_config
from relay.store import db
from relay.store.models import Message
from relay.store.notify import APPLICATION_NAME
from relay.store.states import MessageStatus
from tests.conftest import PairInfo, RunningRelay, mail, make_pair, wait_for, write_config

pytestmark = pytest.mark.postgres

Daemons = tuple[Path, list[RunningRelay], PairInfo, db.Store]

SLOW_POLL = 'transport = "smtp"\npoll_interval = "60s"'


def _config(folder: Path, database_url: str, sink_port: int) -> Path:
    folder.mkdir()
    return write_config(
        folder,
        database_url,
        delivery=SLOW_POLL,
        smarthost=f'host = "127.0.0.1"\nport = {sink_port}\ntimeout = "5s"',
        rules='disable = ["new_pair"]\n\n[rules.keywords]\nphrases = ["hold this one"]',
        daemon=f'pid_file = "{folder / "run" / "relay.pid"}"',
    )


@pytest.fixture
def two_daemons(tmp_path: Path, database_url: str, sink):
    """(the command's relay.toml, both running daemons, the pair, the store)."""
    first = load_config(_config(tmp_path / "a", database_url, sink.port))
    second = load_config(_config(tmp_path / "b", database_url, sink.port))
    # The commands' own pid file is a third one: its wake-up socket reaches no daemon.
    command_config = _config(tmp_path / "command", database_url, sink.port)
    store = db.Store(first.database.url)
    db.upgrade(store)
    pair = make_pair(store, first)
    daemons = [RunningRelay(first), RunningRelay(second)]
    try:
        for daemon in daemons:
            listener = daemon.running.notifications
            assert listener is not None
            wait_for(listener.listening.is_set, what="the daemon listening")
        wait_for(lambda: len(sink.handler.received) >= 2, what="the introductions")
        yield command_config, daemons, pair, store
    finally:
        for daemon in daemons:
            daemon.stop()
        store.dispose()


def _held(daemon: RunningRelay, store: db.Store, pair: PairInfo, subject: str) -> int:
    daemon.send(
        mail(pair.mentor, pair.address, subject, "please hold this one"), pair.mentor, pair.address
    )
    with store.session() as session:
        return session.scalars(
            select(Message.id).where(
                Message.status == MessageStatus.HELD, Message.subject == subject
            )
        ).one()


def _delivered(sink, to: str, subject: str) -> bool:
    return any(each.message["Subject"] == subject for each in sink.to(to))


def test_an_approval_on_another_host_is_delivered_without_waiting_for_the_poll(
    two_daemons: Daemons, sink
):
    command_config, daemons, pair, store = two_daemons
    held = _held(daemons[0], store, pair, "held one")
    result = CliRunner().invoke(cli, ["-c", str(command_config), "approve", str(held)])
    assert result.exit_code == 0, result.output
    wait_for(lambda: _delivered(sink, pair.mentee, "held one"), timeout=10, what="the approval")
    assert [each.message["Subject"] for each in sink.to(pair.mentee)].count("held one") == 1


def test_the_listener_reconnects_after_its_connection_is_killed(two_daemons: Daemons, sink):
    command_config, daemons, pair, store = two_daemons
    listeners = [daemon.running.notifications for daemon in daemons]
    with store.engine.begin() as connection:
        killed = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        ).all()
    assert len(killed) == 2
    wait_for(
        lambda: all(each is not None and each.connections >= 2 for each in listeners),
        timeout=20,
        what="both listeners back",
    )
    held = _held(daemons[1], store, pair, "after the cut")
    result = CliRunner().invoke(cli, ["-c", str(command_config), "approve", str(held)])
    assert result.exit_code == 0, result.output
    wait_for(
        lambda: _delivered(sink, pair.mentee, "after the cut"), timeout=10, what="the approval"
    )


def test_a_participant_changed_by_a_command_empties_every_daemons_pair_cache(
    two_daemons: Daemons, sink
):
    command_config, daemons, pair, _ = two_daemons
    for daemon in daemons:  # each daemon has the pair cached
        daemon.send(mail(pair.mentor, pair.address, "warm", "hello"), pair.mentor, pair.address)
        assert all(intake.directory.version is not None for intake in daemon.running.intakes)
    result = CliRunner().invoke(
        cli,
        ["-c", str(command_config), "participant", "address", "add", pair.mentor, "m2@x.example"],
    )
    assert result.exit_code == 0, result.output
    wait_for(
        lambda: all(
            intake.directory.version is None
            for daemon in daemons
            for intake in daemon.running.intakes
        ),
        timeout=10,
        what="the caches emptied",
    )


def test_a_pooled_connection_cut_while_idle_is_replaced_before_it_fails_a_statement(
    database_url: str,
):
    from relay.store.db import PING_AFTER_IDLE

    store = db.Store(database_url)
    other = db.Store(database_url)
    try:
        with store.read_connection() as connection:
            pid = connection.scalar(text("SELECT pg_backend_pid()"))
        with other.engine.begin() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(PING_AFTER_IDLE + 0.5)
        # The same pooled connection, now dead: checked, replaced, and the read succeeds.
        with store.read_connection() as connection:
            assert connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        store.dispose()
        other.dispose()
