"""One SMTP transaction (MAIL, RCPT, DATA) on a kept-open aiosmtplib session.

aiosmtplib's ``sendmail()`` is built for addresses and messages it knows
nothing about: it parses the sender and every recipient with
``email.utils.parseaddr`` twice each (to validate, then to quote), and
makes the message's line ends CRLF twice (once to count the SIZE option,
once more in ``data()``) before dot-stuffing it with a pattern over every
line. The relay's envelope addresses are its own (a signed bounce address;
a participant's address, checked when it was stored) and its outbound
bytes are rendered with CRLF line ends, so most of that work finds nothing
to do. This module writes the same commands and the same bytes:

- a plain ASCII ``local@domain`` (dot-atoms) is put in ``<...>`` as it is;
  any other address goes through aiosmtplib's ``quote_address``, which
  parses it and refuses one that could inject into the command line, as
  before, before any command is sent;
- the DATA payload is what aiosmtplib sends (lone CR or LF made CRLF, a
  final CRLF, leading dots doubled, the ending dot), built once; content
  that is already CRLF throughout and holds no line starting with a dot is
  used as it is;
- EHLO (or HELO) when the session needs one, SIZE only when advertised,
  SMTPUTF8 when an address is not ASCII (refused as aiosmtplib refuses it
  when the smarthost does not offer it);
- when the EHLO answer offers PIPELINING (RFC 2920; Postfix does), MAIL,
  RCPT and DATA go out in one write and their three replies are read in
  order: two round trips per message instead of four. The commands' bytes
  are the same; a refused MAIL or RCPT is raised as before, after the DATA
  reply is read (an accepted DATA is then ended by a lone dot, an empty
  message the server must not deliver, RFC 2920 section 3.1).

Errors are aiosmtplib's own exceptions (SMTPSenderRefused,
SMTPRecipientRefused, SMTPDataError, ...), raised where ``sendmail()``
would raise them; after a refused step the caller sends RSET (see
relay.delivery.transports). A session is used by one transaction at a
time (the transport hands it out that way), so the message's bytes are
written on its protocol between the DATA command's 354 and the final reply.
"""

from __future__ import annotations

import re

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)
from aiosmtplib.typing import SMTPStatus

# RFC 5322 atext dot-atoms on both sides: nothing in it can end a path or add a parameter.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_LEADING_DOT = re.compile(rb"(?m)^\.")  # aiosmtplib's PERIOD_REGEX
_END_OF_DATA = b".\r\n"
_ACCEPTED_RECIPIENT = (250, 251)  # aiosmtplib's rcpt(): completed, will forward
NO_SMTPUTF8 = "the smarthost does not offer SMTPUTF8, which a non-ASCII address needs"


class NoSmtputf8(aiosmtplib.SMTPNotSupported):
    """An address is not ASCII and the smarthost does not take SMTPUTF8: it never will."""


def envelope_path(address: str, encoding: str = "ascii") -> bytes:
    """``<address>`` as sent in MAIL FROM / RCPT TO.

    ValueError (aiosmtplib's) for an address that could not be put on the command
    line safely; UnicodeEncodeError for a non-ASCII one with the "ascii" encoding.
    """
    if _PLAIN_ADDRESS.fullmatch(address) is not None:
        return b"<" + address.encode("ascii") + b">"
    # Quoted, commented, non-ASCII, ...: aiosmtplib's parser decides, as in sendmail().
    return quote_address(address).encode(encoding)


def data_payload(content: bytes) -> tuple[bytes, int]:
    """(what aiosmtplib's ``data()`` writes after the 354, the SIZE it declares).

    The size is the message with CRLF line ends and a final CRLF, before dot-stuffing
    (RFC 1870), as ``sendmail()`` counts it.
    """
    crlf = content.count(b"\r\n")
    if crlf != content.count(b"\n") or crlf != content.count(b"\r"):
        content = normalize_message_line_endings(content)  # a lone CR or LF somewhere
    elif not content.endswith(b"\r\n"):
        content += b"\r\n"
    size = len(content)
    if content.startswith(b".") or b"\n." in content:
        content = _LEADING_DOT.sub(b"..", content)
    return content + _END_OF_DATA, size


async def send_one(
    client: aiosmtplib.SMTP, sender: str, recipient: str, content: bytes
) -> aiosmtplib.SMTPResponse:
    """MAIL, RCPT and DATA for one recipient on a connected client; the final reply."""
    utf8 = not (sender.isascii() and recipient.isascii())
    encoding = "utf-8" if utf8 else "ascii"
    # Both checked before any command, so a bad address leaves no half-built envelope.
    sender_path = envelope_path(sender, encoding)
    recipient_path = envelope_path(recipient, encoding)
    if client.is_ehlo_or_helo_needed:
        await _greet(client)
    payload, size = data_payload(content)
    options: list[bytes] = []
    if client.supports_extension("size"):
        options.append(b"size=%d" % size)
    if utf8:
        if not client.supports_extension("smtputf8"):
            raise NoSmtputf8(NO_SMTPUTF8)
        options.append(b"SMTPUTF8")
    mail = (b"MAIL", b"FROM:" + sender_path, *options)
    rcpt = (b"RCPT", b"TO:" + recipient_path)
    if client.supports_extension("pipelining"):
        return await _pipelined(client, mail, rcpt, payload, sender, recipient)
    response = await client.execute_command(*mail)
    if response.code != 250:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
    response = await client.execute_command(*rcpt)
    if response.code not in _ACCEPTED_RECIPIENT:
        raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
    return await _data(client, payload)


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO if the server refuses it: what aiosmtplib does before its first command."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


async def _pipelined(
    client: aiosmtplib.SMTP,
    mail: tuple[bytes, ...],
    rcpt: tuple[bytes, ...],
    payload: bytes,
    sender: str,
    recipient: str,
) -> aiosmtplib.SMTPResponse:
    """MAIL, RCPT and DATA in one write (RFC 2920), then the message: the final reply."""
    for argument in (*mail, *rcpt):
        if COMMAND_INJECTION_REGEX.search(argument):  # what execute_command refuses
            raise ValueError("Command arg contains a prohibited control character")
    protocol = _protocol(client)
    commands = b" ".join(mail) + b"\r\n" + b" ".join(rcpt) + b"\r\nDATA\r\n"
    replies: list[aiosmtplib.SMTPResponse] = []
    try:
        protocol.write(commands)
        # Every reply is read, whatever the first ones say, so the session stays in step.
        for _ in range(3):
            replies.append(await _reply(client, protocol))
    except aiosmtplib.SMTPException:
        client.close()  # a lost or garbled reply in a pipeline leaves the rest unpaired
        # A refusal read before the loss (a 421, then the server hung up) is the answer,
        # as it would have been one command at a time.
        refusal = _refusal(replies, sender, recipient)
        if refusal is not None:
            raise refusal from None
        raise
    data_reply = replies[2]
    if any(reply.code == SMTPStatus.domain_unavailable for reply in replies):
        client.close()  # 421: the server is closing, as execute_command() handles it
    refusal = _refusal(replies, sender, recipient)
    if refusal is not None:
        if data_reply.code == 354 and client.is_connected:
            await _end_empty_message(client, protocol)
        raise refusal
    if data_reply.code != 354:
        raise aiosmtplib.SMTPDataError(data_reply.code, data_reply.message)
    return await _message(client, protocol, payload)


def _refusal(
    replies: list[aiosmtplib.SMTPResponse], sender: str, recipient: str
) -> aiosmtplib.SMTPResponseException | None:
    """The MAIL or RCPT refusal among a pipeline's first replies, as one by one raises it."""
    if replies and replies[0].code != 250:
        return aiosmtplib.SMTPSenderRefused(replies[0].code, replies[0].message, sender)
    if len(replies) > 1 and replies[1].code not in _ACCEPTED_RECIPIENT:
        return aiosmtplib.SMTPRecipientRefused(replies[1].code, replies[1].message, recipient)
    return None


async def _reply(client: aiosmtplib.SMTP, protocol: SMTPProtocol) -> aiosmtplib.SMTPResponse:
    """The next reply of a pipeline.

    A server sends a pipeline's replies together (RFC 2920 asks it to), and
    aiosmtplib's protocol parses one reply per arrival of data, leaving the
    rest in its buffer: those are taken from there, only the missing ones waited for.
    """
    # aiosmtplib 5's own parser (private; the version is pinned in pyproject, and the
    # pipelining tests against Postfix's smtp-sink fail if it changes).
    held = protocol._read_response_from_buffer()
    if held is not None:
        return held
    return await protocol.read_response(timeout=client.timeout)


async def _end_empty_message(client: aiosmtplib.SMTP, protocol: SMTPProtocol) -> None:
    """DATA was accepted after a refused envelope: a lone dot ends it with nothing to send."""
    try:
        protocol.write(_END_OF_DATA)
        await protocol.read_response(timeout=client.timeout)  # the refusal decides, not this
    except aiosmtplib.SMTPException:
        client.close()


def _protocol(client: aiosmtplib.SMTP) -> SMTPProtocol:
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    return protocol


async def _data(client: aiosmtplib.SMTP, payload: bytes) -> aiosmtplib.SMTPResponse:
    response = await client.execute_command(b"DATA")
    if response.code != 354:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return await _message(client, _protocol(client), payload)


async def _message(
    client: aiosmtplib.SMTP, protocol: SMTPProtocol, payload: bytes
) -> aiosmtplib.SMTPResponse:
    """The message after the 354, and the final reply."""
    try:
        protocol.write(payload)
        # read_response arms the protocol for the reply before it waits: nothing runs
        # between the write and that, so the reply cannot be taken for unsolicited data.
        response = await protocol.read_response(timeout=client.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()  # as data() does: a half-read reply would desync the session
        raise
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response
