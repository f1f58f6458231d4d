"""Programme mail: prompts from the pair address, check-ins from their signed address.

Owns the headers of the mail the programme sends. A prompt comes from
``<programme name> programme <pair address>``, so a reply is an ordinary
message to the partner through the relay; it carries a Message-ID the relay
made for this pair and item (the same in both participants' copies) and a
References to the pair's programme thread, so replies thread with it (see
relay.delivery.forwarding.map_thread, which lets these ids through). A
check-in comes from its own signed reply address and is never relayed.
"""

from __future__ import annotations

import functools
from email import quoprimime
from email.header import Header
from email.utils import format_datetime, formataddr

from relay.config import Config
from relay.outbound.rewrite import LOOP_HEADER
from relay.outbound.signing import sign
from relay.store.states import utcnow

PROGRAMME_ID_MARK = ".programme@"  # <item.token.programme@domain>: ids the relay made


def programme_thread_id(token: str, domain: str) -> str:
    return f"<thread.{token}{PROGRAMME_ID_MARK}{domain}>"


def programme_message_id(item: str, token: str, domain: str) -> str:
    return f"<{_id_safe(item)}.{token}{PROGRAMME_ID_MARK}{domain}>"


@functools.cache
def _id_safe(item: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in item)


def is_programme_id(message_id: str, token: str) -> bool:
    return f".{token}{PROGRAMME_ID_MARK}" in message_id


def programme_mail(
    config: Config,
    *,
    from_name: str,
    from_address: str,
    to_name: str,
    to_address: str,
    subject: str,
    body: str,
    message_id: str,
    references: str = "",
    date: str = "",
    unsubscribe: str = "",
) -> bytes:
    """The wire bytes of one programme mail (plain text; DKIM-signed when configured).

    A tick writes tens of thousands of these, so the headers are put together from
    the stdlib's encoders (formataddr, Header, quoprimime) rather than through an
    EmailMessage, which costs some milliseconds per mail; the values are all the
    relay's own (names from the registry, a rendered template), and any line break
    in them is removed first.
    """
    headers = [
        ("From", formataddr((_one_line(from_name), from_address), charset="utf-8")),
        ("To", formataddr((_one_line(to_name), to_address), charset="utf-8")),
        ("Subject", _encoded(_one_line(subject))),
        ("Date", date or format_datetime(utcnow())),
        ("Message-ID", message_id),
    ]
    if references:
        headers += [("In-Reply-To", references), ("References", references)]
    if unsubscribe:
        headers.append(("List-Unsubscribe", unsubscribe))
    headers += [
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        (LOOP_HEADER, config.relay.domain),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
    ]
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if body.isascii() and all(len(line) <= MAX_LINE for line in lines):
        headers.append(("Content-Transfer-Encoding", "7bit"))
        encoded = "\r\n".join(lines)
    else:
        headers.append(("Content-Transfer-Encoding", "quoted-printable"))
        # quoprimime encodes one character per byte: hand it the UTF-8 bytes as latin-1.
        octets = "\n".join(lines).encode("utf-8").decode("latin-1")
        encoded = quoprimime.body_encode(octets, maxlinelen=76, eol="\r\n")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    content = (head + "\r\n" + encoded.rstrip("\r\n") + "\r\n").encode("ascii")
    return sign(config, content)


MAX_LINE = 998


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _encoded(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode(linesep="\r\n")
