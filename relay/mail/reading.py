"""Reading a message's bytes: the parsed message, and the one address in its one From.

Both refuse what cannot be read (550 5.6.0 / 5.7.1) rather than guessing;
the parser itself is lenient, so a refusal means the input is broken.
"""

from __future__ import annotations

import logging
from email import message_from_bytes
from email.message import EmailMessage

from relay.errors import RefusedError
from relay.mail import replies
from relay.mail.addresses import normalise
from relay.mail.policy import POLICY

log = logging.getLogger(__name__)


def parse(raw: bytes) -> EmailMessage:
    try:
        message = message_from_bytes(raw, policy=POLICY)
    except Exception:  # the parser is lenient; anything it still rejects is the input's fault
        log.warning("unparseable message", exc_info=True)
        raise RefusedError(replies.MALFORMED) from None
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
