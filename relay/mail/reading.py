"""Reading a message's bytes: the parsed message, and the one address in its one From.

Both refuse what cannot be read (550 5.6.0 / 5.7.1) rather than guessing;
the parser itself is lenient, so a refusal means the input is broken.

The stdlib's parser reads a message line by line, body included, even where
the body is one piece it keeps as it is (any part that is neither multipart
nor message/*): for a 50 KB letter most of the parse. `parse` gives the
parser the header section alone and sets the rest as the payload, which is
what the parser would have set, when the header section ends as the parser
sees it end (its first empty line, every line before it a header) and the
type is a single part; anything else is parsed whole, as before.
"""

from __future__ import annotations

import logging
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesFeedParser

from relay.errors import RefusedError
from relay.mail import replies
from relay.mail.addresses import normalise
from relay.mail.policy import POLICY

log = logging.getLogger(__name__)


_HEADER_END = b"\r\n\r\n"


def parse(raw: bytes) -> EmailMessage:
    try:
        message = _single_part(raw) or message_from_bytes(raw, policy=POLICY)
    except Exception:  # the parser is lenient; anything it still rejects is the input's fault
        log.warning("unparseable message", exc_info=True)
        raise RefusedError(replies.MALFORMED) from None
    assert isinstance(message, EmailMessage)
    return message


def _single_part(raw: bytes) -> EmailMessage | None:
    """The parsed message when its body is one piece after a plain header section, else None."""
    end = raw.find(_HEADER_END)
    if end < 0:
        return None
    parser = BytesFeedParser(policy=POLICY)
    parser.feed(raw[: end + len(_HEADER_END)])
    message = parser.close()
    # A payload means the parser saw the body start before that empty line (a line that
    # is not a header; a message with no header section), or began reading a message/*
    # part's body as a message of its own: then it must read the lot, as must a multipart.
    if message.get_payload() or message.get_content_maintype() == "multipart":
        return None
    # The bytes after the empty line, decoded as the parser decodes its input.
    message.set_payload(raw[end + len(_HEADER_END) :].decode("ascii", "surrogateescape"))
    assert isinstance(message, EmailMessage)
    return message


def single_from_address(message: EmailMessage) -> str:
    """The one address in the one From header, or a refusal."""
    try:
        headers = message.get_all("From", [])
        addresses = [normalise(each.addr_spec) for each in headers[0].addresses] if headers else []
    except Exception:  # a From the header registry cannot read is the input's fault
        log.warning("unreadable From header", exc_info=True)
        raise RefusedError(replies.BAD_FROM) from None
    if len(headers) != 1 or len(addresses) != 1 or not addresses[0]:
        raise RefusedError(replies.BAD_FROM)
    return addresses[0]
