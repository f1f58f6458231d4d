"""SMTP PIPELINING (RFC 2920) on the outbound send, against real servers on loopback.

When the smarthost's EHLO answer offers PIPELINING, MAIL, RCPT and DATA go
out in one write and their replies are read in order; without it the
commands go one by one. What a user checks: the mail arrives (Postfix's
smtp-sink), a refused RCPT inside the pipeline is a permanent or temporary
failure with the server's words and the session carries on, a connection
dropped after MAIL leaves the outbox row deferred and the retry delivers it
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from relay.config import Config, load_config
from relay.delivery.notices import Notices
from relay.delivery.transports import PermanentFailure, SmtpTransport, TemporaryFailure
from relay.delivery.worker import DeliveryWorker
from relay.settings import SmarthostSettings
from relay.store import db
from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus, utcnow
from tests.conftest import MENTOR, free_port, make_pair, write_config
from tests.delivery.test_delivery_smtp_transaction import Smarthost

BOUNCE = "bounce-1-0123456789abcdef@relay.test"
CONTENT = b"From: a@relay.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n.hello\r\n"
SMTP_SINK = "/usr/sbin/smtp-sink"


def _sends(port: int, *recipients: str) -> tuple[list[Exception | None], int]:
    """Send CONTENT to each recipient in turn on one transport: (outcomes, sessions opened)."""
    settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))
    outcomes: list[Exception | None] = []
    opened = 0

    async def run() -> None:
        nonlocal opened
        transport = SmtpTransport(settings, local_hostname="relay.test")
        make = transport._new_client

        def counted() -> Any:
            nonlocal opened
            opened += 1
            return make()

        transport._new_client = counted  # type: ignore[method-assign]
        try:
            for recipient in recipients:
                try:
                    await transport.send(BOUNCE, recipient, CONTENT)
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(error)
        finally:
            await transport.close()

    asyncio.run(run())
    return outcomes, opened


# -- Postfix's smtp-sink ----------------------------------------------------------------


@contextlib.contextmanager
def smtp_sink(*options: str) -> Iterator[tuple[int, list[str]]]:
    """A private smtp-sink (it offers PIPELINING) on a free port; the list holds the mails
    it took (each as it dumped it: trace lines, then the message) once it has stopped."""
    # Outside pytest's private tmp_path: smtp-sink writes as the user it switches to.
    dump = Path(tempfile.mkdtemp(prefix="relay-smtp-sink-"))
    dump.chmod(0o777)
    mails: list[str] = []
    port = free_port()
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    command = [SMTP_SINK, *as_user, "-d", f"{dump}/%H%M%S.", *options, f"127.0.0.1:{port}", "16"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "smtp-sink did not start"
            time.sleep(0.05)
        yield port, mails
    finally:
        process.terminate()
        process.wait(10)
        mails.extend(sorted(path.read_text() for path in dump.iterdir()))
        shutil.rmtree(dump, ignore_errors=True)


def test_mail_reaches_postfix_through_the_pipeline() -> None:
    with smtp_sink() as (port, mails):
        outcomes, opened = _sends(port, "one@example.org", "two@example.org")
    assert outcomes == [None, None] and opened == 1
    assert len(mails) == 2
    for mail in mails:
        assert f"X-Mail-Args: <{BOUNCE}> SIZE={len(CONTENT)}" not in mail  # no SIZE offered
        assert f"X-Mail-Args: <{BOUNCE}>" in mail
        assert mail.endswith("Subject: hi\n\n.hello\n\n")  # the leading dot unstuffed
    assert sorted(m.split("X-Rcpt-Args: ")[1].split("\n")[0] for m in mails) == [
        "<one@example.org>",
        "<two@example.org>",
    ]


def test_a_connection_dropped_after_mail_is_a_temporary_failure() -> None:
    with smtp_sink("-q", "mail") as (port, mails):
        outcomes, opened = _sends(port, "one@example.org", "two@example.org")
    assert [type(outcome) for outcome in outcomes] == [TemporaryFailure, TemporaryFailure]
    assert str(outcomes[0]) == "smarthost unreachable: SMTPServerDisconnected"
    assert opened == 2  # the dropped session is not reused
    assert mails == []


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_421_then_a_hang_up_after_mail_is_the_421_either_way(pipelining: bool) -> None:
    no_pipelining = [] if pipelining else ["-p"]
    with smtp_sink(*no_pipelining, "-Q", "mail") as (port, mails):
        outcomes, opened = _sends(port, "one@example.org", "two@example.org")
    assert [type(outcome) for outcome in outcomes] == [TemporaryFailure, TemporaryFailure]
    assert str(outcomes[0]).startswith("421 ")
    assert opened == 2 and mails == []


# -- aiosmtpd offering PIPELINING: refusals inside the pipeline ---------------------------


@dataclass
class PipeliningSmarthost(Smarthost):
    """The transport tests' smarthost, adding PIPELINING to the EHLO answer (aiosmtpd reads
    commands line by line, so it takes a pipeline as it comes)."""

    pipelining: bool = True

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses


@contextlib.contextmanager
def aiosmtpd_smarthost(handler: PipeliningSmarthost) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_refused_recipients_fail_as_the_server_says_and_the_session_carries_on(
    pipelining: bool,
) -> None:
    handler = PipeliningSmarthost(
        pipelining=pipelining, refuse_rcpt=["550 5.1.1 no such user", "450 4.2.0 try later"]
    )
    with aiosmtpd_smarthost(handler) as port:
        outcomes, opened = _sends(port, "one@example.org", "two@example.org", "three@example.org")
    assert [type(outcome) for outcome in outcomes] == [
        PermanentFailure,
        TemporaryFailure,
        type(None),
    ]
    assert [str(outcome) for outcome in outcomes[:2]] == [
        "550 5.1.1 no such user",
        "450 4.2.0 try later",
    ]
    assert [received[1:] for received in handler.received] == [
        (BOUNCE, ["three@example.org"], CONTENT)
    ]
    assert opened == 1 and len(set(handler.peers)) == 1  # RSET, not a new session


# -- a server that answers only once the whole pipeline is in -------------------------------


class HoldingSmarthost:
    """A minimal SMTP server on loopback that offers PIPELINING and, as Postfix may, holds its
    replies to MAIL and RCPT until DATA has come; it accepts DATA even after a refused RCPT
    when asked to (RFC 2920 lets a server do so). Records every byte it gets.

    Not a mock of anything the relay uses: aiosmtpd answers each command at once, so it
    cannot show that the client wrote the three commands without waiting.
    """

    def __init__(self, rcpt_reply: bytes = b"250 2.1.5 ok", accept_data: bool = False) -> None:
        self.rcpt_reply = rcpt_reply
        self.accept_data = accept_data
        self.transcripts: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        self.transcripts.append(b"")
        writer.write(b"220 holding ESMTP\r\n")
        held: list[bytes] = []
        refused = False
        while line := await reader.readline():
            received += line
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-holding\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                refused = False
                held.append(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                refused = not self.rcpt_reply.startswith(b"2")
                held.append(self.rcpt_reply + b"\r\n")
            elif verb == b"DATA":
                go = not refused or self.accept_data
                writer.write(b"".join(held) + (b"354 go\r\n" if go else b"554 5.5.1 none\r\n"))
                held.clear()
                if go and refused:
                    await writer.drain()
                    received += await reader.readline()  # RFC 2920: only a lone dot may come
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                elif go:
                    await writer.drain()
                    received += await reader.readuntil(b"\r\n.\r\n")
                    writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            self.transcripts[-1] = bytes(received)
            await writer.drain()
        self.transcripts[-1] = bytes(received)
        writer.close()


def _held_sends(server: HoldingSmarthost, *recipients: str) -> list[Exception | None]:
    async def run() -> list[Exception | None]:
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=3))
        outcomes: list[Exception | None] = []
        async with listening:
            transport = SmtpTransport(settings, local_hostname="relay.test")
            for recipient in recipients:
                try:
                    await transport.send(BOUNCE, recipient, CONTENT)
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(error)
            await transport.close()
        return outcomes

    return asyncio.run(run())


def test_mail_rcpt_and_data_are_written_without_waiting_for_replies() -> None:
    server = HoldingSmarthost()
    assert _held_sends(server, "one@example.org", "two@example.org") == [None, None]
    [transcript] = server.transcripts  # one session, the same commands as one by one
    envelope = b"MAIL FROM:<" + BOUNCE.encode() + b">\r\nRCPT TO:<%s@example.org>\r\nDATA\r\n"
    body = CONTENT.replace(b"\r\n.hello", b"\r\n..hello") + b".\r\n"
    assert transcript == (
        b"EHLO relay.test\r\n" + envelope % b"one" + body + envelope % b"two" + body + b"QUIT\r\n"
    )


def test_an_accepted_data_after_a_refused_rcpt_gets_only_the_dot() -> None:
    server = HoldingSmarthost(rcpt_reply=b"550 5.1.1 no such user", accept_data=True)
    [outcome] = _held_sends(server, "one@example.org")
    assert isinstance(outcome, PermanentFailure) and str(outcome) == "550 5.1.1 no such user"
    [transcript] = server.transcripts
    # The empty message, then RSET on the same session: the message itself never went.
    assert transcript.endswith(b"RCPT TO:<one@example.org>\r\nDATA\r\n.\r\nRSET\r\nQUIT\r\n")
    assert b"hello" not in transcript


# -- the worker: outbox rows as `relay queue` shows them ---------------------------------------


def _rows(store: db.Store) -> dict[str, tuple[DeliveryStatus, str | None]]:
    with store.read_session() as session:
        rows = session.execute(
            select(OutboxEntry.recipient, OutboxEntry.status, OutboxEntry.last_error)
        )
        return {recipient: (status, error) for recipient, status, error in rows}


def _round(store: db.Store, config: Config) -> None:
    async def run() -> None:
        transport = SmtpTransport(config.smarthost, local_hostname=config.relay.domain)
        worker = DeliveryWorker(store, config, transport, Notices(config))
        try:
            await worker.run_once()
        finally:
            await transport.close()

    asyncio.run(run())


def test_outbox_rows_after_refusals_and_a_drop_inside_the_pipeline(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    config = load_config(
        write_config(
            tmp_path,
            database_url,
            delivery='transport = "smtp"\nretry_first = "1s"',
            smarthost=f'host = "127.0.0.1"\nport = {port}\ntimeout = "5s"',
        )
    )
    store = db.Store(config.database.url)
    db.upgrade(store)
    try:
        make_pair(store, config)  # queues the two introductions
        mentor = MENTOR[0]

        # A drop after MAIL: both rows deferred, nothing delivered.
        with smtp_sink("-q", "mail") as (port_dropping, mails):
            assert port_dropping != port
            dropping = _smarthost(port_dropping)
            _round(store, _with_smarthost(config, dropping))
        rows = _rows(store)
        assert {status for status, _ in rows.values()} == {DeliveryStatus.DEFERRED}
        assert rows[mentor][1] == "smarthost unreachable: SMTPServerDisconnected"
        assert mails == []

        # The retry meets a server that refuses one recipient for good and the other for now.
        _due_now(store)
        handler = PipeliningSmarthost(refuse_rcpt=["550 5.1.1 no such user", "450 4.2.0 later"])
        with aiosmtpd_smarthost(handler) as port_refusing:
            refusing = _smarthost(port_refusing)
            _round(store, _with_smarthost(config, refusing))
        rows = _rows(store)
        assert sorted(rows.values(), key=str) == sorted(
            [
                (DeliveryStatus.FAILED, "550 5.1.1 no such user"),
                (DeliveryStatus.DEFERRED, "450 4.2.0 later"),
            ],
            key=str,
        )
        [later] = [who for who, (status, _) in rows.items() if status == DeliveryStatus.DEFERRED]

        # The next retry goes through Postfix's smtp-sink: delivered, once.
        _due_now(store)
        with smtp_sink() as (port_accepting, mails):
            accepting = _smarthost(port_accepting)
            _round(store, _with_smarthost(config, accepting))
            _round(store, _with_smarthost(config, accepting))  # nothing left to send
        assert _rows(store)[later] == (DeliveryStatus.DELIVERED, None)
        [mail] = mails
        assert f"X-Rcpt-Args: <{later}>" in mail
    finally:
        store.dispose()


def _with_smarthost(config: Config, smarthost: SmarthostSettings) -> Config:
    return dataclasses.replace(config, smarthost=smarthost)


def _smarthost(port: int) -> SmarthostSettings:
    return SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))


def _due_now(store: db.Store) -> None:
    with store.session() as session:
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.status == DeliveryStatus.DEFERRED)
            .values(next_attempt_at=utcnow())
        )
