"""Copies of a minor's mail to their guardian ([safeguarding] guardian_copies).

Owns turning the partner's outbound copy (already scrubbed: neither
participant's real address is in it) into the guardian's copy: addressed to
the guardian instead of the partner, with a fresh Message-ID, no threading
headers, and a subject that says it is a copy. The guardian so learns no real
address either, the mentor's included. Copies go in the outbox as notices
(kind "guardian_copy"), so a failed copy never sends the writer a notice.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from email.message import EmailMessage
from secrets import token_hex

from relay.config import Config
from relay.mail.addresses import display_address
from relay.store.models import Message, Participant


def guardians_of(stored: Message) -> Iterator[tuple[Participant, str]]:
    """(minor, guardian address) for each side of the message that is a minor with a guardian."""
    for person in (stored.sender, stored.recipient):
        if person.minor and person.guardian_email:
            yield person, person.guardian_email


def guardian_copy(
    config: Config, outbound: EmailMessage, minor: Participant, guardian: str
) -> EmailMessage:
    copied = copy.deepcopy(outbound)
    for name in ("To", "Cc", "Message-ID", "In-Reply-To", "References", "Reply-To"):
        del copied[name]
    copied["To"] = display_address(f"Guardian of {minor.display_name}", guardian)
    copied["Message-ID"] = f"<guardian.{token_hex(12)}@{config.relay.domain}>"
    subject = str(outbound.get("Subject", ""))
    del copied["Subject"]
    copied["Subject"] = f"[copy for the guardian of {minor.display_name}] {subject}".strip()
    copied["Auto-Submitted"] = "auto-generated"
    return copied
