"""Replacing participants' real addresses wherever a message carries them.

Owns the body half of the privacy promise and its entry point,
``scrub_message``: every registered address of either participant, in every
textual form relay.outbound.scrub_text knows, is replaced by the pair
address in every textual leaf part (plain, HTML, vCard, calendar; whatever
the charset and transfer encoding, and in the encoded text too, should it
not decode), in attachment file names, and in the headers of forwarded
messages (message/rfc822) inside it. HTML is cleaned first
(relay.mail.html: no active content; remote images and CSS removed when the
plan says so), and there an address split by tags is found too.

The modules depend one way: scrub -> scrub_parts (the walk over the MIME
tree and what is done to part headers, Content-IDs and parameters) ->
scrub_text (the Scrubber; the forms of an address in scrub_forms, found by
scrub_search). Parts are read and
rewritten with relay.mail.parts, as the rules read them; a changed part is
re-encoded cleanly, an untouched part keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser

from relay.mail import html
from relay.mail.parts import decode_text, replace_text
from relay.outbound import scrub_parts
from relay.outbound.scrub_text import FOLDED_TYPES, Scrubber


def scrub_message(
    message: EmailMessage,
    addresses: Iterable[str],
    replacement: str,
    *,
    hidden_domains: Iterable[str] | None = None,
    strip_remote: bool = False,
) -> int:
    """Scrub the message in place; returns how many text parts changed.

    ``hidden_domains`` (default: the domains of ``addresses``) are replaced
    by the relay's domain in machine-made values only: boundaries, calendar
    and vCard fields, nested messages' headers. Content-IDs are always
    replaced by opaque ones on the relay's domain (and the HTML's cid:
    links with them), since their right-hand side names the sender's
    domain or machine.
    """
    scrubber = Scrubber(addresses, replacement, hidden_domains, strip_remote)
    if not scrubber.addresses:
        return 0
    return scrub_parts.scrub_tree(message, scrubber, _scrub_body)


def _scrub_body(part: EmailMessage, scrubber: Scrubber, extra: Callable[[str], str]) -> bool:
    """Scrub one leaf part's text; True when it changed. Binary parts keep their bytes.

    First the part as it was sent, before decoding: an encoding that does not
    decode (invalid base64, a multipart whose boundary is missing) would
    otherwise hide an address that every client shows as it stands.
    """
    raw_changed = _scrub_undecoded(part, scrubber)
    if not is_textual(part):
        return raw_changed
    content_type = part.get_content_type()
    text = decode_text(part)
    scrubbed = extra(text)
    if content_type == "text/rfc822-headers":
        scrubbed = headers_only_kept(scrubbed)
    if content_type in FOLDED_TYPES or _filename_type(part) in FOLDED_TYPES:
        scrubbed = scrubber.folded_text(scrubbed)
    elif content_type == "text/html":
        cleaned = html.clean(scrubbed, strip_remote=scrubber.strip_remote)
        scrubbed = scrubber.markup(cleaned)
    else:
        scrubbed = scrubber.text(scrubbed)
    if scrubbed == text:
        return raw_changed
    replace_text(part, scrubbed)
    return True


def _scrub_undecoded(part: EmailMessage, scrubber: Scrubber) -> bool:
    """Scrub a part's payload as sent when its decoding may not show what a reader sees.

    7bit, 8bit and quoted-printable text decode faithfully and are scrubbed
    as text; base64 (valid or not), an unknown encoding, or a multipart that
    could not be split are scrubbed here, in the form they travel in.
    """
    cte = part.get("Content-Transfer-Encoding", "")
    cte = str(cte).strip().lower() if cte is not None else ""
    faithful = cte in ("", "7bit", "8bit", "binary", "quoted-printable")
    if faithful and part.get_content_maintype() != "multipart":
        return False
    payload = part.get_payload()
    if not isinstance(payload, str):
        return False
    scrubbed = scrubber.text(payload)
    if scrubbed == payload:
        return False
    part.set_payload(scrubbed)
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
