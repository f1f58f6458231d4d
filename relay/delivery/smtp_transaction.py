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
  when the smarthost does not offer it).

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
from aiosmtplib.protocol import normalize_message_line_endings

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
    response = await client.execute_command(b"MAIL", b"FROM:" + sender_path, *options)
    if response.code != 250:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
    response = await client.execute_command(b"RCPT", b"TO:" + recipient_path)
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


async def _data(client: aiosmtplib.SMTP, payload: bytes) -> aiosmtplib.SMTPResponse:
    response = await client.execute_command(b"DATA")
    if response.code != 354:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
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
