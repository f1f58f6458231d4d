"""LMTP ([smtp] protocol = "lmtp"): a reply per recipient after DATA, over a Unix socket or TCP."""

from __future__ import annotations

import grp
import os
import smtplib
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.config import load_config
from relay.delivery.notices import Notices
from relay.errors import ConfigError
from relay.store import db, registry
from relay.store.models import Message
from tests.conftest import (
    DOMAIN,
    PairInfo,
    RunningRelay,
    Sink,
    mail,
    make_pair,
    wait_for,
    wire,
    write_config,
)

OTHER_MENTOR = ("cat.real@mentors.example.org", "Cat Mentor")
OTHER_MENTEE = ("dan.real@school.example.net", "Dan Mentee")


@pytest.fixture
def socket_folder() -> Iterator[Path]:
    # Not below pytest's tmp_path: a Unix socket path must stay under ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="relay-lmtp-") as folder:
        yield Path(folder)


def lmtp_relay(
    tmp_path: Path, database_url: str, sink: Sink, listen: str
) -> tuple[RunningRelay, PairInfo, PairInfo, PairInfo, db.Store]:
    """A relay speaking LMTP with Ana+Ben, Cat+Dan, and Ana mentoring Dan as well."""
    config = load_config(
        write_config(
            tmp_path,
            database_url,
            smtp=f'protocol = "lmtp"\n{listen}',
            delivery='transport = "smtp"\npoll_interval = "1s"',
            smarthost=f'host = "127.0.0.1"\nport = {sink.port}',
        )
    )
    store = db.Store(config.database.url)
    db.upgrade(store)
    first = make_pair(store, config)
    second = make_pair(store, config, OTHER_MENTOR, OTHER_MENTEE)
    with store.session() as session:
        created = registry.create_pair(
            session, Notices(config), DOMAIN, first.mentor, second.mentee
        )
    third = PairInfo(created.address, first.mentor, second.mentee)
    return RunningRelay(config), first, second, third, store


@pytest.fixture
def over_socket(tmp_path: Path, database_url: str, sink: Sink, socket_folder: Path):
    path = socket_folder / "lmtp.sock"
    running, first, second, _, store = lmtp_relay(
        tmp_path, database_url, sink, f'socket = "{path}"\nsocket_group = "postfix"'
    )
    yield running, first, second, store, path
    running.stop()
    store.dispose()


def send_lmtp(client: smtplib.LMTP, sender: str, recipients: list[str], data: bytes) -> list:
    """MAIL, RCPT..., DATA; then the one reply per recipient that LMTP owes."""
    client.ehlo()  # smtplib.LMTP says LHLO here
    client.mail(sender)
    for recipient in recipients:
        assert client.rcpt(recipient)[0] == 250
    first = client.data(data)
    return [first] + [client.getreply() for _ in recipients[1:]]


def test_one_message_two_pairs_accepted_for_one_refused_for_the_other(over_socket, sink: Sink):
    _, first, second, store, path = over_socket
    # Ana writes to her own pair and, blind-copied, to a pair she is not part of.
    message = mail(first.mentor, first.address, "Two pairs")
    with smtplib.LMTP(str(path)) as client:
        answers = send_lmtp(client, first.mentor, [first.address, second.address], wire(message))
    assert answers[0] == (250, b"2.0.0 OK: queued")
    assert answers[1] == (550, b"5.7.1 sender is not a participant of this pair")
    with store.session() as session:
        stored = session.scalars(select(Message)).one()
        assert stored.pair.token in first.address
        assert stored.source == "lmtp"
    wait_for(lambda: sink.to(first.mentee) and len(sink.to(first.mentee)) == 2, what="forward")
    assert all("Two pairs" not in each.data.decode() for each in sink.to(second.mentee))


def test_socket_permissions_and_cleanup(over_socket, socket_folder: Path):
    running, *_, path = over_socket
    # A second relay on the same socket is refused, not allowed to take it over.
    with pytest.raises(ConfigError, match="in use"):
        RunningRelay(running.config)
    mode = os.stat(path)
    assert stat.S_ISSOCK(mode.st_mode)
    assert stat.S_IMODE(mode.st_mode) == 0o660
    assert mode.st_gid == grp.getgrnam("postfix").gr_gid
    running.stop()
    assert not path.exists()
    # A socket left behind by a crash does not stop the next start.
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))
    again = RunningRelay(running.config)
    try:
        with smtplib.LMTP(str(path)) as client:
            assert client.ehlo()[0] == 250
    finally:
        again.stop()
    running.stop = lambda: None  # type: ignore[method-assign]


def test_lhlo_only_and_internal_error_is_451_for_each_recipient(
    tmp_path: Path, database_url: str, sink: Sink
):
    from tests.conftest import free_port

    running, first, _, third, store = lmtp_relay(
        tmp_path, database_url, sink, f'host = "127.0.0.1"\nport = {free_port()}'
    )
    try:
        with smtplib.SMTP("127.0.0.1", running.port) as plain:
            assert plain.ehlo()[0] == 500  # EHLO is not LMTP
        with store.engine.begin() as connection:  # a real failure: the table is gone
            connection.exec_driver_sql("ALTER TABLE outbox RENAME TO outbox_gone")
        message = mail(first.mentor, first.address, "Broken")
        # Ana is in both pairs she writes to: only the failure refuses her message.
        with smtplib.LMTP("127.0.0.1", running.port) as client:
            answers = send_lmtp(client, first.mentor, [first.address, third.address], wire(message))
        assert answers == [(451, b"4.3.0 temporary failure, please try again later")] * 2
        with store.session() as session:
            assert session.scalars(select(Message)).all() == []
    finally:
        running.stop()
        store.dispose()


def test_message_too_big_is_refused_once_per_recipient(
    tmp_path: Path, database_url: str, sink: Sink, socket_folder: Path
):
    path = socket_folder / "big.sock"
    config = load_config(
        write_config(
            tmp_path,
            database_url,
            relay='domain = "relay.test"\nmax_message_size = 2000',
            smtp=f'protocol = "lmtp"\nsocket = "{path}"',
        )
    )
    store = db.Store(config.database.url)
    db.upgrade(store)
    first = make_pair(store, config)
    running = RunningRelay(config)
    try:
        big = mail(first.mentor, first.address, body="x" * 5000)
        with smtplib.LMTP(str(path)) as client:
            answers = send_lmtp(
                client, first.mentor, [first.address, first.address.upper()], wire(big)
            )
            assert client.noop()[0] == 250  # the session is still in step
        assert answers == [(552, b"5.3.4 message too big for this relay")] * 2
    finally:
        running.stop()
        store.dispose()


@pytest.mark.parametrize(
    ("smtp", "error"),
    [
        ('socket = "/run/x.sock"', 'socket needs protocol = "lmtp"'),
        ('protocol = "lmtp"\nsocket = "x.sock"', "socket must be an absolute path"),
        ('protocol = "lmtp"\nsocket = "/run/x.sock"\nsocket_mode = "rw"', "socket_mode"),
        ('protocol = "pop3"', "expected one of 'smtp', 'lmtp'"),
    ],
)
def test_bad_listener_settings_are_clear_errors(tmp_path: Path, smtp: str, error: str):
    with pytest.raises(ConfigError, match=error):
        load_config(write_config(tmp_path, "sqlite:///x.db", smtp=smtp))
