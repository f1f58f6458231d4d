"""Parts of a message that carry identity in their structure, not in their text.

Owns what rewrite does with them before a message leaves:
- OpenPGP keys and signatures (application/pgp-keys, application/pgp-signature)
  name their owner's real address in the key's user ids: they are removed,
  and a multipart/signed message becomes its signed content alone.
- TNEF files (Outlook's winmail.dat) are binary, so nothing in them can be
  scrubbed, and they name the sender's address and machine: removed (the
  identity_parts rule holds such a message first).
- Contact cards (text/vcard, text/x-vcard): the lines that reach a person
  outside the relay (EMAIL, TEL, ADR, IMPP, URL, social profiles) are removed;
  the name stays. Whether such a message goes out at all is the
  identity_parts rule's decision (held by default).
Calendar invitations are text, and their ORGANIZER/ATTENDEE mailto: addresses
are scrubbed like any other text (relay.scrub).
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message

from relay.mail.parts import decode_text, replace_text
from relay.mail.tnef import is_tnef

KEY_TYPES = frozenset({"application/pgp-keys", "application/pgp-signature"})
CARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})
_CONTACT_LINE = re.compile(
    r"^(?:[\w-]+\.)?(?:EMAIL|TEL|ADR|LABEL|IMPP|URL|X-SOCIALPROFILE|X-[\w-]*(?:AIM|ICQ|JABBER|"
    r"MSN|SKYPE|TWITTER|WHATSAPP|TELEGRAM|SIGNAL))[;:]",
    re.IGNORECASE,
)


def strip_identity_parts(message: EmailMessage) -> None:
    """Remove key parts, TNEF files and contact lines of cards, in place."""
    if is_tnef(message):  # the whole message is one: what is left is a note saying so
        message.set_content("(A winmail.dat file was removed: it cannot be passed on safely.)")
    _remove_keys(message)
    for part in message.walk():
        if part.get_content_type() in CARD_TYPES and isinstance(part, EmailMessage):
            card = decode_text(part)
            kept = _without_contact_lines(card)
            if kept != card:
                replace_text(part, kept)


def _remove_keys(container: EmailMessage) -> None:
    if not container.is_multipart():
        return
    parts = [p for p in container.iter_parts() if isinstance(p, EmailMessage)]
    kept = [
        part for part in parts if part.get_content_type() not in KEY_TYPES and not is_tnef(part)
    ]
    for part in kept:
        _remove_keys(part)
    if container.get_content_type() == "multipart/signed" and kept:
        _become(container, kept[0])
    elif len(kept) != len(parts):
        payload: list[Message | str] = list(kept)
        container.set_payload(payload)


def _become(container: EmailMessage, inner: EmailMessage) -> None:
    """Replace a container's content with one of its parts, keeping its other headers."""
    for name in {name for name in container if name.lower().startswith("content-")}:
        del container[name]
    for name, value in inner.items():
        if name.lower().startswith("content-"):
            container[name] = value
    container.set_payload(inner.get_payload())


def _without_contact_lines(card: str) -> str:
    kept: list[str] = []
    dropping = False
    soft_break = False  # vCard 2.1 quoted-printable: a line ending in "=" goes on
    for line in card.splitlines(keepends=True):
        continues = soft_break or line[:1] in (" ", "\t")  # folded onto the previous line
        if not continues:
            dropping = bool(_CONTACT_LINE.match(line))
            soft_break = "QUOTED-PRINTABLE" in line.split(":", 1)[0].upper()
        soft_break = soft_break and line.rstrip("\r\n").endswith("=")
        if not dropping:
            kept.append(line)
    return "".join(kept)
