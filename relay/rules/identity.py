"""Rules that guard identity rather than content: who else is named, what is attached, who sent it.

- outside_recipients: To or Cc names an address that is neither the pair
  address nor one of the sender's own (a reply-all, a Cc to a friend, or the
  partner's real address: answered the same way, so the answer never tells
  whether a guess of it was right). Rejected by default: the relay never sends to it, and the sender
  is told why.
- identity_parts: a contact card (text/vcard, text/x-vcard) or a calendar
  invitation (text/calendar, application/ics) carries names, addresses and
  phone numbers in fields no scrubbing of text can be sure of. Held by default;
  if an operator accepts them, rewrite scrubs them (relay.identity_parts).
- authentication is not a rule here: intake asks relay.mail.authentication
  whether the From is genuine (verified by the relay, or per the trusted
  MTA's Authentication-Results) and records an ``authentication`` hit when
  it is not. Headers claiming the trusted MTA's id which it did not add are
  removed by intake before anything reads them (strip_forged_results).
"""

from __future__ import annotations

from email.message import EmailMessage, Message

from relay.mail.addresses import normalise
from relay.mail.headerlist import replace_headers
from relay.mail.text import MailView
from relay.mail.tnef import TNEF_NAMES, is_tnef
from relay.rules.base import Hit, RuleContext, Span

IDENTITY_TYPES = {
    "text/vcard": "a contact card (vCard)",
    "text/x-vcard": "a contact card (vCard)",
    "text/directory": "a contact card (vCard)",
    "text/calendar": "a calendar invitation",
    "application/ics": "a calendar invitation",
    # Outlook's winmail.dat: binary, so never scrubbed, and it names the sender's
    # address, client and machine; a copy sent on goes without it (relay.outbound).
    "application/ms-tnef": "a Windows TNEF file (winmail.dat)",
    "application/vnd.ms-tnef": "a Windows TNEF file (winmail.dat)",
}


class OutsideRecipientsRule:
    name = "outside_recipients"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allowed = context.allowed_addresses | {context.pair_address.lower()}
        named: list[str] = []
        for header in ("To", "Cc"):
            for value in mail.message.get_all(header, []):
                try:
                    addresses = [normalise(each.addr_spec) for each in value.addresses]
                except (AttributeError, ValueError):
                    continue
                named.extend(a for a in addresses if a and a not in allowed)
        if not named:
            return []
        outside = ", ".join(dict.fromkeys(named))
        reason = f"To/Cc names someone outside the pair ({outside})"
        return [Hit(self.name, reason, tuple(Span(0, 0, 0, a, "part") for a in named))]


class IdentityPartsRule:
    name = "identity_parts"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        # The view already read each file's name (the dear part of is_tnef), and
        # a text part it reads as body text has none; only the containers are left.
        names = {a.index: a.filename for a in mail.attachments}
        body_text = {p.index for p in mail.parts} - names.keys()
        found = []
        for index, part in enumerate(mail.message.walk()):
            kind = IDENTITY_TYPES.get(part.get_content_type())
            if kind is None and index not in body_text:
                name = names.get(index)
                tnef = (
                    (_may_be_named(part) and is_tnef(part))
                    if name is None
                    else name.strip().lower() in TNEF_NAMES
                )
                if tnef:
                    kind = IDENTITY_TYPES["application/ms-tnef"]
            if kind:
                found.append(
                    Hit(self.name, f"{kind} is attached", (Span(index, 0, 0, "", "part"),))
                )
        return found


def _may_be_named(part: Message) -> bool:
    """Whether a part's headers could give it a file name (reading them is dearer).

    get_filename reads a "filename" or "name" parameter, written out or (to be
    safe) hidden in an encoded word ("=?").
    """
    for name, value in part.raw_items():
        if name.lower() in ("content-type", "content-disposition"):
            text = str(value)
            if "name" in text.lower() or "=?" in text:
                return True
    return False


def authserv_id(value: str) -> str:
    """The authserv-id an Authentication-Results value starts with (RFC 8601)."""
    return value.strip().split(";", 1)[0].split()[0].lower() if value.strip() else ""


def strip_forged_results(message: EmailMessage, trusted_authserv_id: str) -> int:
    """Remove Authentication-Results claiming the trusted id that the trusted MTA did not add.

    The trusted MTA adds its own results above its own Received header, so
    only results with that id appearing before the second Received header
    (top down) are its; any further down were written upstream, by whoever
    sent the message, and are removed. Returns how many were removed.
    """
    trusted = trusted_authserv_id.lower()
    kept: list[tuple[str, str]] = []
    removed = 0
    received_seen = 0
    for name, value in message.items():
        lowered = name.lower()
        if lowered == "received":
            received_seen += 1
        elif (
            lowered == "authentication-results"
            and authserv_id(str(value)) == trusted
            and received_seen > 1
        ):
            removed += 1
            continue
        kept.append((name, value))
    if removed:
        replace_headers(message, kept)
    return removed
