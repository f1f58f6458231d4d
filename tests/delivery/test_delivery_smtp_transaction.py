"""The SMTP transaction written without sendmail(): the same bytes on the wire, the same answers.

relay.delivery.smtp_transaction writes MAIL, RCPT and DATA itself over an
aiosmtplib session. These tests hold it to what aiosmtplib's ``sendmail()``
sends: the DATA payload and SIZE for any bytes (hypothesis), the envelope
paths for any plain address, and whole transcripts recorded by a small SMTP
server on loopback; and to what a smarthost sees through the transport
(aiosmtpd): SMTPUTF8 for a non-ASCII address, a bad address refused before
any command, one session kept across refusals.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.delivery.smtp_transaction import NO_SMTPUTF8, data_payload, envelope_path
from relay.delivery.transports import PermanentFailure, SmtpTransport, TemporaryFailure
from relay.settings import SmarthostSettings

BOUNCE = "bounce-1-0123456789abcdef@relay.test"
CONTENT = b"From: a@relay.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the pieces, against aiosmtplib's own functions -------------------------------------


def _aiosmtplib_payload(content: bytes) -> tuple[bytes, int]:
    """What sendmail() declares as SIZE and data() writes after the 354."""
    normalized = normalize_message_line_endings(content)
    return PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", len(normalized)


_LINES = st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"x", b"\r\n.", b"\xc3\xa9", b" "]),
    max_size=40,
).map(b"".join)


@settings(max_examples=3000)
@given(st.one_of(_LINES, st.binary(max_size=60)))
@example(b"")
@example(b".")
@example(b"a\r\n.\r\n")
@example(b"a\r\n")
@example(b"a\r")
@example(b"\r\n\r\n.b")
def test_the_data_payload_and_size_are_aiosmtplibs(content: bytes) -> None:
    assert data_payload(content) == _aiosmtplib_payload(content)


_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
_ATOMS = st.lists(st.text(alphabet=_ATEXT, min_size=1, max_size=6), min_size=1, max_size=3)


@settings(max_examples=2000)
@given(_ATOMS.map(".".join), _ATOMS.map(".".join))
def test_a_plain_address_is_quoted_as_aiosmtplib_quotes_it(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert envelope_path(address) == quote_address(address).encode()


@pytest.mark.parametrize(
    "address",
    [
        '"ben real"@example.org',
        "Ben <ben@example.org>",
        "ben@example.org (Ben)",
        "b..x@y",
        "a@[192.0.2.1]",
        "a@b> SIZE=1",  # aiosmtplib's parser keeps the address and drops the rest
        "a@b\r\nRSET",
        "",
    ],
)
def test_other_addresses_go_through_aiosmtplibs_parser(address: str) -> None:
    assert envelope_path(address) == quote_address(address).encode()


@pytest.mark.parametrize("address", ["a b@example.org", "<>", '"a"b c@example.org'])
def test_an_address_aiosmtplib_refuses_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not permitted in an SMTP mailbox"):
        quote_address(address)
    with pytest.raises(ValueError, match="not permitted in an SMTP mailbox"):
        envelope_path(address)


# -- whole transcripts, against sendmail() -------------------------------------------


class RecordingSmarthost:
    """A minimal SMTP server on loopback that records every byte a client sends.

    Not a mock of anything the relay uses: it stands in for the smarthost so that
    two clients' bytes can be compared exactly (aiosmtpd hands a handler parsed
    values, not the wire).
    """

    def __init__(self, extensions: tuple[str, ...]) -> None:
        self.extensions = extensions
        self.transcripts: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        self.transcripts.append(b"")
        writer.write(b"220 recording ESMTP\r\n")
        while line := await reader.readline():
            received += line
            verb = line[:4].upper()
            if verb == b"EHLO":
                lines = ["recording", *self.extensions]
                reply = "".join(f"250-{text}\r\n" for text in lines[:-1]) + f"250 {lines[-1]}\r\n"
                writer.write(reply.encode())
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                body = await reader.readuntil(b"\r\n.\r\n")
                received += body
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 OK\r\n")
            self.transcripts[-1] = bytes(received)
            await writer.drain()
        self.transcripts[-1] = bytes(received)
        writer.close()


async def _both_transcripts(
    extensions: tuple[str, ...], recipient: str, content: bytes
) -> tuple[bytes, bytes]:
    smarthost = RecordingSmarthost(extensions)
    server = await asyncio.start_server(smarthost.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="relay.test")
        await client.connect()
        mail_options = [] if recipient.isascii() else ["SMTPUTF8"]
        await client.sendmail(BOUNCE, [recipient], content, mail_options=mail_options)
        await client.quit()
        settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))
        transport = SmtpTransport(settings, local_hostname="relay.test")
        await transport.send(BOUNCE, recipient, content)
        await transport.close()
    sendmail, ours = smarthost.transcripts
    return sendmail, ours


@pytest.mark.parametrize(
    ("extensions", "recipient", "content"),
    [
        (("SIZE 100000", "8BITMIME"), "b@example.org", CONTENT),
        ((), "b@example.org", CONTENT),
        (("SIZE 100000",), "b@example.org", b"To: b\n\n.one\n..two\r\nlone\rcr\n.\n"),
        (("SIZE 100000",), "b@example.org", b"To: b\r\n\r\nno final line end"),
        (("SIZE 100000",), "ben.o'neil+x@sub.example.org", b".\r\n" * 40),
        (("SIZE 100000", "SMTPUTF8"), "b@b\u00fccher.example", CONTENT),
        # The same bytes when MAIL, RCPT and DATA go out in one write (RFC 2920).
        (("SIZE 100000", "PIPELINING"), "b@example.org", b"To: b\n\n.one\n..two\r\n"),
        (("PIPELINING", "SMTPUTF8"), "b@b\u00fccher.example", CONTENT),
    ],
)
def test_the_transport_writes_what_sendmail_writes(
    extensions: tuple[str, ...], recipient: str, content: bytes
) -> None:
    sendmail, ours = asyncio.run(_both_transcripts(extensions, recipient, content))
    assert b"MAIL FROM:" in ours and ours.endswith(b"\r\n.\r\nQUIT\r\n")
    assert ours == sendmail


# -- through the transport, to aiosmtpd -----------------------------------------------


@dataclass
class Smarthost:
    refuse_rcpt: list[str] = field(default_factory=list)  # replies for the next RCPTs
    mails: list[tuple[str, list[str]]] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)  # the session of each MAIL
    received: list[tuple[tuple[str, int], str, list[str], bytes]] = field(default_factory=list)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails.append((address, options))
        self.peers.append(session.peer)
        envelope.mail_from, envelope.mail_options = address, options
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            (session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 queued"


@pytest.fixture(params=[True, False], ids=["smtputf8", "ascii-only"])
def smarthost(request: pytest.FixtureRequest) -> Iterator[tuple[Smarthost, int]]:
    handler = Smarthost()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=request.param)
    controller.start()
    yield handler, port
    controller.stop()


def _run(port: int, *sends: tuple[str, bytes]) -> list[Exception | None]:
    settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=5))
    outcomes: list[Exception | None] = []

    async def run() -> None:
        transport = SmtpTransport(settings, local_hostname="relay.test")
        try:
            for recipient, content in sends:
                try:
                    await transport.send(BOUNCE, recipient, content)
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(error)
        finally:
            await transport.close()

    asyncio.run(run())
    return outcomes


def test_a_non_ascii_address_is_sent_with_smtputf8_or_refused_for_good(
    smarthost: tuple[Smarthost, int],
) -> None:
    handler, port = smarthost
    [outcome] = _run(port, ("ben@b\u00fccher.example", CONTENT))
    if handler.received:  # the smarthost offers SMTPUTF8
        assert outcome is None
        assert handler.mails[0][1] == [f"SIZE={len(CONTENT)}", "SMTPUTF8"]
        assert handler.received[0][2] == ["ben@b\u00fccher.example"]
    else:
        assert isinstance(outcome, PermanentFailure) and str(outcome) == NO_SMTPUTF8
        assert handler.mails == []


def test_a_bad_address_is_refused_before_any_command(smarthost: tuple[Smarthost, int]) -> None:
    handler, port = smarthost
    [outcome] = _run(port, ("b c@example.org", CONTENT))
    assert isinstance(outcome, ValueError)
    assert handler.mails == []


def test_refusals_are_reset_and_the_session_carries_on(smarthost: tuple[Smarthost, int]) -> None:
    handler, port = smarthost
    handler.refuse_rcpt = ["550 5.1.1 no such user", "452 4.2.2 mailbox full"]
    outcomes = _run(
        port,
        ("one@example.org", CONTENT),
        ("two@example.org", CONTENT),
        ("three@example.org", b"To: three\n\n.dot\nline\n"),
    )
    assert [type(outcome) for outcome in outcomes] == [
        PermanentFailure,
        TemporaryFailure,
        type(None),
    ]
    assert [str(outcome) for outcome in outcomes[:2]] == [
        "550 5.1.1 no such user",
        "452 4.2.2 mailbox full",
    ]
    [(peer, sender, recipients, content)] = handler.received
    assert (sender, recipients) == (BOUNCE, ["three@example.org"])
    assert content == b"To: three\r\n\r\n.dot\r\nline\r\n"
    # Every MAIL came on one session: the refused envelopes were reset, not dropped.
    assert len(handler.peers) == 3 and set(handler.peers) == {peer}


# -- a smarthost that offers PIPELINING -------------------------------------------------


async def _watching_for_pipelining(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipelined: list[bytes]
) -> None:
    """Offers PIPELINING, refuses RCPT TO <nobody@...> with 550, and notes every command
    that came before the reply to the one before it had gone out."""

    async def reply(text: bytes) -> None:
        await asyncio.sleep(0.02)  # a command written without waiting arrives meanwhile
        if reader._buffer:  # type: ignore[attr-defined]  # the next command, already here
            pipelined.append(bytes(reader._buffer))  # type: ignore[attr-defined]
        writer.write(text + b"\r\n")
        await writer.drain()

    await reply(b"220 watching ESMTP")
    refused = False
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            await reply(b"250-watching\r\n250-PIPELINING\r\n250 8BITMIME")
        elif verb == b"RCPT":
            refused = b"nobody@" in line
            await reply(b"550 5.1.1 no such user" if refused else b"250 OK")
        elif verb == b"DATA":
            if refused:
                await reply(b"554 5.5.1 no valid recipients")
                continue
            writer.write(b"354 go ahead\r\n")
            await reader.readuntil(b"\r\n.\r\n")
            await reply(b"250 2.0.0 queued")
        elif verb == b"QUIT":
            await reply(b"221 bye")
            break
        else:
            await reply(b"250 OK")
    writer.close()


def test_each_command_waits_for_the_reply_before_it_even_where_pipelining_is_offered() -> None:
    """aiosmtplib's protocol drops a reply that arrives while the one before it waits to be
    picked up, so a pipelined send (RFC 2920) lost replies and timed out now and then under
    load: the transport sends one command at a time, whatever the smarthost offers."""
    pipelined: list[bytes] = []

    async def run() -> list[Exception | None]:
        listening = await asyncio.start_server(
            lambda reader, writer: _watching_for_pipelining(reader, writer, pipelined),
            "127.0.0.1",
            0,
        )
        port = listening.sockets[0].getsockname()[1]
        settings = SmarthostSettings(host="127.0.0.1", port=port, timeout=timedelta(seconds=3))
        outcomes: list[Exception | None] = []
        async with listening:
            transport = SmtpTransport(settings, local_hostname="relay.test")
            for recipient in ("nobody@example.org", "b@example.org"):
                try:
                    await transport.send(BOUNCE, recipient, CONTENT)
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(error)
            await transport.close()
        return outcomes

    outcomes = asyncio.run(run())
    assert [type(outcome) for outcome in outcomes] == [PermanentFailure, type(None)]
    assert str(outcomes[0]).startswith("550 5.1.1")
    assert pipelined == []
