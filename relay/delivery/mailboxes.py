"""The relay's own mailboxes: postmaster@, abuse@ and the notices' address.

Owns what happens to mail for them (intake routes it here, inside its one
commit):

- ``postmaster@`` and ``abuse@`` (RFC 5321 4.5.1 requires postmaster) go to
  the operator's ``[relay] postmaster`` address, the mail attached whole to
  a short note of who sent it from where. Bounces (null sender) are taken
  too, as RFC 5321 asks.
- The notices' From address (``relay@``) is not read. Whoever writes to it
  gets one automatic answer saying so (at most one a day per address), and
  only when answering cannot start a loop (RFC 3834): never to automated
  mail, bulk or list mail, a bounce, a null or relay-domain sender, or a
  mailer-daemon style address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Moderator, Notice, Notices
from relay.mail.addresses import normalise, split
from relay.outbound.signing import outbound_bytes
from relay.rules.automated import is_automated
from relay.store.models import OutboxEntry
from relay.store.states import OutboxKind, utcnow

log = logging.getLogger(__name__)

POSTMASTER_LOCAL_PARTS = frozenset({"postmaster", "abuse"})
_NEVER_ANSWER_LOCAL = ("mailer-daemon", "postmaster", "noreply", "no-reply", "bounce")
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "Feedback-ID")


@dataclass(frozen=True)
class Taken:
    """What mail for the relay's own mailboxes left in the outbox."""

    queued: int = 0


def mailbox_of(address: str, config: Config) -> str | None:
    """ "postmaster", "notices" or None for an address on the relay domain."""
    local, domain = split(address)
    if domain != config.relay.domain.lower():
        return None
    if local in POSTMASTER_LOCAL_PARTS:
        return "postmaster"
    if local == config.relay.notice_local_part.lower():
        return "notices"
    return None


def take(
    session: Session,
    config: Config,
    notices: Notices,
    recipients: list[str],
    message: EmailMessage,
    envelope_from: str,
    peer: str,
) -> Taken:
    queued = 0
    for recipient in recipients:
        kind = mailbox_of(recipient, config)
        if kind == "postmaster":
            _to_operator(session, config, notices, recipient, message, envelope_from, peer)
            queued += 1
        elif kind == "notices" and _answer_unread(session, config, notices, message, envelope_from):
            queued += 1
    return Taken(queued)


def _to_operator(
    session: Session,
    config: Config,
    notices: Notices,
    recipient: str,
    message: EmailMessage,
    envelope_from: str,
    peer: str,
) -> None:
    operator = config.postmaster_address
    note = notices.render(
        Notice.POSTMASTER,
        Moderator("Postmaster", operator),
        mailbox=normalise(recipient),
        subject=str(message.get("Subject", "(no subject)"))[:200],
        envelope_from=envelope_from.strip("<>"),
        peer=peer,
    )
    note.add_attachment(message)  # message/rfc822, as received
    session.add(
        OutboxEntry(
            kind=OutboxKind.NOTICE,
            notice=Notice.POSTMASTER,
            recipient=operator,
            content=outbound_bytes(config, note),
        )
    )
    log.info("mail for %s passed to the postmaster", normalise(recipient))


def _answer_unread(
    session: Session, config: Config, notices: Notices, message: EmailMessage, envelope_from: str
) -> bool:
    sender = normalise(envelope_from)
    local, domain = split(sender)
    never = (
        not sender
        or domain == config.relay.domain.lower()
        or local.startswith("owner-")
        or local.endswith("-request")
        or any(word in local for word in _NEVER_ANSWER_LOCAL)
        or is_automated(message, config.relay.domain)
        or any(name in message for name in _LIST_HEADERS)
    )
    if never:
        log.info("mail to the notices' address not answered (automated or unanswerable)")
        return False
    since = utcnow() - timedelta(days=1)
    answered = session.scalar(
        select(func.count(OutboxEntry.id)).where(
            OutboxEntry.notice == Notice.UNREAD,
            OutboxEntry.recipient == sender,
            OutboxEntry.created_at >= since,
        )
    )
    if answered:
        return False
    answer = notices.render(
        Notice.UNREAD,
        Moderator("", sender),
        subject=str(message.get("Subject", "(no subject)"))[:200],
        notices_address=config.notice_address,
    )
    answer.replace_header("Auto-Submitted", "auto-replied")
    if message.get("Message-ID"):
        answer["In-Reply-To"] = str(message["Message-ID"]).strip()
    session.add(
        OutboxEntry(
            kind=OutboxKind.NOTICE,
            notice=Notice.UNREAD,
            recipient=sender,
            content=outbound_bytes(config, answer),
        )
    )
    return True
