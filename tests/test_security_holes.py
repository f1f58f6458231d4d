"""Smaller holes, each attacked against the running daemon.

postmaster@ and abuse@ are taken and reach the operator; mail to the notices'
address gets one loop-safe "not read" answer; overlapping lone-dot sequences
are refused; a forged or replayed DSN changes nothing; a database or Maildir
the daemon cannot write makes `relay status` unhealthy and is logged.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from relay.cli import cli
from relay.config import load_config
from relay.delivery.worker import requeue
from relay.errors import ConfigError
from relay.store import db
from relay.store.models import DeliveryStatus, Message, OutboxEntry, OutboxKind
from tests.conftest import (
    POSTMASTER,
    Sink,
    mail,
    make_pair,
    wait_for,
    wire,
    write_config,
)
from tests.smtpdialogue import dialogue
from tests.test_operations import Daemon
from tests.test_privacy import dsn


def subjects_to(sink: Sink, address: str) -> list[str]:
    return [str(r.message["Subject"]) for r in sink.to(address)]


# -- postmaster@ and abuse@ -------------------------------------------------------------


def test_postmaster_and_abuse_reach_the_operator(relay, sink: Sink, pair):
    for mailbox in ("postmaster@relay.test", "abuse@relay.test"):
        report = mail("someone@elsewhere.example", mailbox, f"for {mailbox}")
        said = dialogue(relay.port, "someone@elsewhere.example", [mailbox], wire(report))
        assert said.count(b"250 2.1.5 OK") == 1 and b"250 2.0.0 OK" in said
    # RFC 5321: postmaster takes bounces too.
    bounce = mail("MAILER-DAEMON@elsewhere.example", "postmaster@relay.test", "a bounce")
    assert b"250 2.0.0" in dialogue(relay.port, "", ["postmaster@relay.test"], wire(bounce))
    wait_for(lambda: len(sink.to(POSTMASTER)) == 3)
    got = {str(r.message["Subject"]): r.message for r in sink.to(POSTMASTER)}
    assert set(got) == {
        "[postmaster@relay.test] for postmaster@relay.test",
        "[abuse@relay.test] for abuse@relay.test",
        "[postmaster@relay.test] a bounce",
    }
    attached = next(got["[abuse@relay.test] for abuse@relay.test"].iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert str(attached.get_content()["From"]) == "someone@elsewhere.example"


def test_postmaster_is_required_with_an_smtp_transport(tmp_path: Path):
    path = write_config(
        tmp_path,
        "sqlite:///x.db",
        relay='domain = "relay.test"',
        delivery='transport = "smtp"',
    )
    with pytest.raises(ConfigError, match=r"\[relay\] postmaster is required"):
        load_config(path)


# -- the notices' address ---------------------------------------------------------------


def test_mail_to_the_notices_address_gets_one_loop_safe_answer(relay, sink: Sink, pair):
    sink.wait_for(2)
    relay.send(
        mail(pair.mentee, "relay@relay.test", "Re: Meet your mentor"),
        pair.mentee,
        "relay@relay.test",
    )
    answer = wait_for(lambda: sink.to(pair.mentee)[1:])[0]
    assert str(answer.message["Subject"]) == "This address is not read: Re: Meet your mentor"
    assert answer.message["Auto-Submitted"] == "auto-replied"
    assert "Nobody reads mail sent to this address" in answer.message.get_content()
    # Not again the same day; never to automated mail; never to our own answer.
    relay.send(mail(pair.mentee, "relay@relay.test", "again"), pair.mentee, "relay@relay.test")
    automated = mail(
        "bot@elsewhere.example", "relay@relay.test", "out of office", Auto_Submitted="auto-replied"
    )
    relay.send(automated, "bot@elsewhere.example", "relay@relay.test")
    listed = mail(
        "news@lists.example", "relay@relay.test", "digest", List_Id="<news.lists.example>"
    )
    relay.send(listed, "news@lists.example", "relay@relay.test")
    relay.send(answer.data, answer.envelope_from, "relay@relay.test")  # our answer, looped back
    # A sentinel sent last: the worker sends in order, so anything queued above is out.
    relay.send(mail(pair.mentor, pair.address, "sentinel"), pair.mentor, pair.address)
    wait_for(lambda: "sentinel" in subjects_to(sink, pair.mentee))
    assert subjects_to(sink, pair.mentee)[1:] == [
        "This address is not read: Re: Meet your mentor",
        "sentinel",
    ]
    assert sink.to("bot@elsewhere.example") == sink.to("news@lists.example") == []


# -- overlapping dot sequences ------------------------------------------------------------


def test_overlapping_lone_dot_sequences_are_refused(relay, sink: Sink, pair, store: db.Store):
    head = wire(mail(pair.mentor, pair.address, "dots")).split(b"\r\n\r\n", 1)[0]
    # On the wire (dot-stuffed): "\r\n..\r\n..\n" -> after unstuffing "\r\n.\r\n.\n",
    # a CRLF lone dot whose line ending begins a bare-LF lone dot.
    body = b"line one\r\n..\r\n..\nline three\r\n"
    said = dialogue(relay.port, pair.mentor, [pair.address], head + b"\r\n\r\n" + body)
    assert b"550 5.6.0 message contains a bare CR or LF around a lone dot" in said
    with store.session() as session:
        assert session.scalars(select(Message)).all() == []


# -- forged and replayed DSNs ---------------------------------------------------------------


def forward_row(store: db.Store) -> OutboxEntry:
    with store.session() as session:
        forwards = select(OutboxEntry).where(OutboxEntry.kind == OutboxKind.FORWARD)
        return session.scalars(forwards.order_by(OutboxEntry.id)).first()


def test_a_forged_or_replayed_dsn_changes_nothing(relay, sink: Sink, pair, store: db.Store):
    relay.send(mail(pair.mentor, pair.address, "Plans"), pair.mentor, pair.address)
    forward = wait_for(
        lambda: [r for r in sink.to(pair.mentee) if "Plans" in str(r.message["Subject"])]
    )[0]
    wait_for(lambda: forward_row(store).status is DeliveryStatus.DELIVERED)
    bounce_address, sent_id = forward.envelope_from, forward.message["Message-ID"]
    # The recipient saw the bounce address (Return-Path) and forges a failure report.
    dialogue(relay.port, "", [bounce_address], dsn(bounce_address, "Plans"))
    dialogue(relay.port, "", [bounce_address], dsn(bounce_address, "Plans", message_id="<other@x>"))
    dialogue(
        relay.port,
        "someone@x.example",
        [bounce_address],
        dsn(bounce_address, "Plans", message_id=sent_id),
    )
    assert forward_row(store).status is DeliveryStatus.DELIVERED
    # A genuine report (null sender, the message's own Message-ID) is taken, once.
    genuine = dsn(bounce_address, "Plans", message_id=sent_id)
    dialogue(relay.port, "", [bounce_address], genuine)
    assert forward_row(store).status is DeliveryStatus.FAILED
    with store.session() as session:
        requeue(session, [forward_row(store).id])
    wait_for(lambda: forward_row(store).status is DeliveryStatus.DELIVERED)
    dialogue(relay.port, "", [bounce_address], genuine)  # replayed
    relay.send(mail(pair.mentee, pair.address, "sentinel"), pair.mentee, pair.address)
    wait_for(lambda: "sentinel" in subjects_to(sink, pair.mentor))
    assert forward_row(store).status is DeliveryStatus.DELIVERED
    assert [s for s in subjects_to(sink, pair.mentor) if "Not delivered" in s] == [
        "Not delivered: Plans"
    ]


# -- a database or Maildir the daemon cannot write ----------------------------------------------


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """chattr +i: not even root may write (file modes do not stop root, who runs CI)."""
    subprocess.run(["chattr", "-R", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", *map(str, paths)], check=True)


@contextlib.contextmanager
def read_only_database(url: str) -> Iterator[None]:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        with immutable(*(p for p in (path, Path(f"{path}-wal")) if p.exists())):
            yield
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    name = engine.url.database
    # Open sessions keep the setting they started with: end the daemon's so that
    # it reconnects with the new one (read-only, then writable again).
    others = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    try:
        with engine.connect() as connection:
            connection.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
            connection.execute(others, {"name": name})
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text("SET default_transaction_read_only = off"))
            connection.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
            connection.execute(others, {"name": name})
        engine.dispose()


def status(config_path: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["-c", str(config_path), "status", "--json"])
    return result.exit_code, json.loads(result.output)


def start_daemon(tmp_path: Path, database_url: str, **sections: str) -> Daemon:
    path = write_config(
        tmp_path,
        database_url,
        daemon='pid_file = "relay.pid"\nhealth_interval = "1s"',
        **sections,
    )
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    make_pair(store, config)
    store.dispose()
    daemon = Daemon(tmp_path, path)
    daemon.expect("READY=1")
    wait_for(lambda: status(path)[0] == 0, what="a healthy status")
    return daemon


def test_a_read_only_database_makes_status_unhealthy(tmp_path: Path, database_url: str):
    daemon = start_daemon(tmp_path, database_url)
    try:
        with read_only_database(database_url):
            _, report = wait_for(
                lambda: (lambda got: got if got[0] == 1 else None)(status(daemon.config_path)),
                what="an unhealthy status",
            )
            assert any("is the database writable?" in p for p in report["problems"])
            wait_for(
                lambda: "ERROR" in daemon.output and "cannot write to the database" in daemon.output
            )
        wait_for(lambda: status(daemon.config_path)[0] == 0, what="healthy again")
        assert "the database is writable again" in daemon.output
    finally:
        daemon.stop()


def test_an_unwritable_maildir_makes_status_unhealthy(tmp_path: Path, database_url: str):
    daemon = start_daemon(tmp_path, database_url)  # transport = "maildir", folder outbox/
    outbox = tmp_path / "outbox"
    wait_for(lambda: len(list(outbox.glob("*/new/*"))) == 2, what="the introductions")
    try:
        with immutable(outbox):
            _, report = wait_for(
                lambda: (lambda got: got if got[0] == 1 else None)(status(daemon.config_path)),
                what="an unhealthy status",
            )
            assert any(
                "Maildir outbox" in p and "cannot be written" in p for p in report["problems"]
            )
            wait_for(
                lambda: "ERROR" in daemon.output and "health: the Maildir outbox" in daemon.output
            )
        wait_for(lambda: status(daemon.config_path)[0] == 0, what="healthy again")
    finally:
        daemon.stop()
