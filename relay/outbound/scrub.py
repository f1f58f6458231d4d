"""Replacing participants' real addresses wherever a message carries them.

Owns the body half of the privacy promise and its entry point,
``scrub_message``: every registered address of either participant, in every
textual form relay.outbound.scrub_text knows, is replaced by the pair
address in every textual leaf part (plain, HTML, vCard, calendar; whatever
the charset and transfer encoding), in attachment file names, and in the
headers of forwarded messages (message/rfc822) inside it.

The modules depend one way: scrub -> scrub_parts (the walk over the MIME
tree and what is done to part headers, Content-IDs and parameters) ->
scrub_text (the forms of an address, the Scrubber). Parts are read and
rewritten with relay.mail.parts, as the rules read them; a changed part is
re-encoded cleanly, an untouched part keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser

from relay.mail.parts import decode_text, replace_text
from relay.outbound import scrub_parts
from relay.outbound.scrub_text import FOLDED_TYPES, Scrubber


def scrub_message(
    message: EmailMessage,
    addresses: Iterable[str],
    replacement: str,
    *,
    hidden_domains: Iterable[str] | None = None,
) -> int:
    """Scrub the message in place; returns how many text parts changed.

    ``hidden_domains`` (default: the domains of ``addresses``) are replaced
    by the relay's domain in machine-made values only: boundaries, calendar
    and vCard fields, nested messages' headers. Content-IDs are always
    replaced by opaque ones on the relay's domain (and the HTML's cid:
    links with them), since their right-hand side names the sender's
    domain or machine.
    """
    scrubber = Scrubber(addresses, replacement, hidden_domains)
    if scrubber.pattern is None:
        return 0
    return scrub_parts.scrub_tree(message, scrubber, _scrub_body)


def _scrub_body(part: EmailMessage, scrubber: Scrubber, extra: Callable[[str], str]) -> bool:
    """Scrub one leaf part's text; True when it changed. Binary parts are left alone."""
    if not is_textual(part):
        return False
    content_type = part.get_content_type()
    text = decode_text(part)
    scrubbed = extra(text)
    if content_type == "text/rfc822-headers":
        scrubbed = headers_only_kept(scrubbed)
    if content_type in FOLDED_TYPES or _filename_type(part) in FOLDED_TYPES:
        scrubbed = scrubber.folded_text(scrubbed)
    else:
        scrubbed = scrubber.text(scrubbed)
    if scrubbed == text:
        return False
    replace_text(part, scrubbed)
    return True


def headers_only_kept(text: str) -> str:
    """A bounce's copy of a message's headers, cut to what a reader needs (no Received, no IPs)."""
    parsed = HeaderParser(policy=policy.default).parsestr(text)
    kept = []
    for name, value in parsed.items():
        if name.lower() in scrub_parts.NESTED_KEPT:
            try:
                kept.append(f"{name}: {value}")
            except Exception:  # an unreadable header is dropped, not passed on unread
                continue
    return "\n".join(kept) + "\n"


def _filename_type(part: EmailMessage) -> str:
    """The type a textual attachment's name says it has (contact.vcf sent as octet-stream)."""
    name = (part.get_filename() or "").lower()
    if name.endswith((".vcf", ".vcard")):
        return "text/vcard"
    if name.endswith((".ics", ".vcs")):
        return "text/calendar"
    return ""


def is_textual(part: EmailMessage) -> bool:
    """Whether a leaf part is text a scrub can rewrite without breaking a file format."""
    if part.get_content_maintype() == "text":
        return True
    return part.get_content_type() in FOLDED_TYPES or bool(_filename_type(part))
