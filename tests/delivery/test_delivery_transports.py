"""The transports called directly: a Maildir in a temporary folder, a real aiosmtpd smarthost.

A transport says how a delivery went by raising: TemporaryFailure (the
worker tries again later) or PermanentFailure (the worker gives up and tells
the sender). These tests make the smarthost answer each way.
"""

from __future__ import annotations

import asyncio
import mailbox
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from relay.delivery.transports import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
)
from relay.settings import SmarthostSettings

CONTENT = b"From: a@relay.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
BOUNCE = "bounce-1-0123456789abcdef@relay.test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Maildir --------------------------------------------------------------------------


def test_maildir_delivers_one_file_per_message_with_the_envelope_sender(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "outbox")
    asyncio.run(transport.send(BOUNCE, "Ben.Real+x@School.example.net", CONTENT))
    asyncio.run(transport.send(BOUNCE, "ben.real+x@school.example.net", CONTENT))

    folder = transport.folder_for("ben.real+x@school.example.net")
    assert folder == tmp_path / "outbox" / "ben.real+x@school.example.net"
    delivered = [bytes(message) for message in mailbox.Maildir(folder, create=False)]
    assert len(delivered) == 2
    assert delivered[0].startswith(f"Return-Path: <{BOUNCE}>\n".encode())
    assert b"\r\n" not in delivered[0] and delivered[0].endswith(b"\n\nhello\n")


def test_maildir_folder_names_cannot_leave_the_outbox(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "outbox")
    folder = transport.folder_for("../../etc/passwd@x/y")
    assert folder.parent == tmp_path / "outbox"
    assert "/" not in folder.name


def test_an_unwritable_maildir_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(TemporaryFailure, match="cannot write Maildir"):
        asyncio.run(MaildirTransport(blocker).send(BOUNCE, "b@example.org", CONTENT))


# -- SMTP smarthost ---------------------------------------------------------------------


@dataclass
class Smarthost:
    """An aiosmtpd server that answers RCPT and DATA as a test tells it to."""

    rcpt_reply: str = "250 OK"
    data_reply: str = "250 2.0.0 queued"
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            self.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return self.data_reply


@pytest.fixture
def smarthost() -> Iterator[tuple[Smarthost, int]]:
    handler = Smarthost()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _send(port: int, recipient: str = "b@example.org") -> None:
    settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))

    async def run() -> None:
        transport = SmtpTransport(settings, local_hostname="relay.test")
        try:
            await transport.send(BOUNCE, recipient, CONTENT)
        finally:
            await transport.close()

    asyncio.run(run())


def test_smtp_hands_the_message_over_with_its_envelope(smarthost: tuple[Smarthost, int]) -> None:
    handler, port = smarthost
    _send(port)
    assert handler.received == [(BOUNCE, ["b@example.org"], CONTENT)]


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "failure", "detail"),
    [
        ("450 4.2.1 mailbox busy", "250 OK", TemporaryFailure, "450 4.2.1 mailbox busy"),
        ("550 5.1.1 no such user", "250 OK", PermanentFailure, "550 5.1.1 no such user"),
        ("250 OK", "451 4.3.0 try later", TemporaryFailure, "451 4.3.0 try later"),
        ("250 OK", "554 5.7.1 refused", PermanentFailure, "554 5.7.1 refused"),
    ],
)
def test_smtp_answers_become_temporary_or_permanent_failures(
    smarthost: tuple[Smarthost, int],
    rcpt_reply: str,
    data_reply: str,
    failure: type[Exception],
    detail: str,
) -> None:
    handler, port = smarthost
    handler.rcpt_reply, handler.data_reply = rcpt_reply, data_reply
    with pytest.raises(failure) as raised:
        _send(port)
    assert str(raised.value) == detail
    assert handler.received == []


def test_an_unreachable_smarthost_is_a_temporary_failure() -> None:
    with pytest.raises(TemporaryFailure, match="smarthost unreachable"):
        _send(_free_port())  # nothing listens there


def test_one_connection_carries_several_messages_and_survives_a_refusal(
    smarthost: tuple[Smarthost, int],
) -> None:
    handler, port = smarthost
    settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))

    async def run() -> None:
        transport = SmtpTransport(settings, local_hostname="relay.test")
        try:
            await transport.send(BOUNCE, "one@example.org", CONTENT)
            handler.data_reply = "554 5.7.1 refused"
            with pytest.raises(PermanentFailure):
                await transport.send(BOUNCE, "two@example.org", CONTENT)
            handler.data_reply = "250 OK"
            await transport.send(BOUNCE, "three@example.org", CONTENT)
        finally:
            await transport.close()

    asyncio.run(run())
    assert [recipients for _, recipients, _ in handler.received] == [
        ["one@example.org"],
        ["three@example.org"],
    ]
