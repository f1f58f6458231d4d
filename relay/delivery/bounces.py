"""Bounces (DSNs) coming back to the relay's signed envelope senders.

Owns what happens to mail for ``bounce-<sealed id>-<hmac>@<domain>``: a
delivery status notification whose action is "failed" marks that outbox row
failed and tells the original sender, in a notice that names neither the
recipient's real address nor the raw bounce. Everything else sent there
(a forged signature, a "delayed" report, an auto-reply) is dropped quietly:
it gets the same 250 as a real bounce, so the address reveals nothing.

The recipient of a forward sees its bounce address (Return-Path), so a
valid signature alone does not make a report genuine. A report is believed
only when it comes with the null sender (as RFC 5321 4.5.5 says DSNs do),
returns the headers of the very message sent (its Message-ID, in a
message/rfc822 or text/rfc822-headers part), and is the first for that
row: each row takes one bounce, ever.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, HeaderParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.delivery.notices import Notices
from relay.mail.addresses import BounceAddresses
from relay.store.db import Store
from relay.store.models import OutboxEntry, RelaySecret
from relay.store.states import DeliveryStatus, utcnow

log = logging.getLogger(__name__)

VERP_SECRET_NAME = "verp"


def load_bounce_addresses(store: Store, domain: str) -> BounceAddresses:
    """The signer for this database's bounce addresses (its key was made by a migration)."""
    with store.session() as session:
        key = session.scalar(select(RelaySecret.value).where(RelaySecret.name == VERP_SECRET_NAME))
    if key is None:
        raise RuntimeError("the database has no VERP secret; was it created by `relay db upgrade`?")
    return BounceAddresses(domain=domain, key=key.encode())


def failed_status(message: EmailMessage) -> str | None:
    """The Status of the first failed recipient in a DSN, or None if it reports no failure."""
    if message.get_content_type() != "multipart/report":
        return None
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if not isinstance(block, Message):
                continue
            if str(block.get("Action", "")).strip().lower() == "failed":
                return str(block.get("Status", "5.0.0")).strip() or "5.0.0"
    return None


def take_bounces(
    store: Store,
    notices: Notices,
    addresses: BounceAddresses,
    recipients: list[str],
    message: EmailMessage,
    envelope_from: str,
) -> None:
    """Mail for bounce addresses: each recorded in its own commit, forged ones dropped."""
    for address in recipients:
        outbox_id = addresses.outbox_id(address)
        if outbox_id is None:
            log.info("dropped mail to a bounce address with a bad signature")
            continue
        with store.session() as session:
            record_bounce(session, notices, outbox_id, message, envelope_from)


def returned_message_ids(message: EmailMessage) -> set[str]:
    """The Message-IDs of the message(s) a DSN returns, whole or headers only."""
    found: set[str] = set()
    for part in message.walk():
        kind = part.get_content_type()
        headers: Message | None = None
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            headers = inner if isinstance(inner, Message) else None
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = HeaderParser().parsestr(payload.decode("utf-8", "replace"))
        if headers is not None and headers.get("Message-ID"):
            found.add(str(headers.get("Message-ID")).strip())
    return found


def sent_message_id(content: bytes) -> str:
    return str(BytesHeaderParser().parsebytes(content).get("Message-ID", "")).strip()


def record_bounce(
    session: Session,
    notices: Notices,
    outbox_id: int,
    message: EmailMessage,
    envelope_from: str = "",
) -> bool:
    """Mark a forward failed on a genuine failure report; True if something changed."""
    status = failed_status(message)
    if status is None:
        log.info("bounce address for outbox %s got mail that reports no failure", outbox_id)
        return False
    if envelope_from.strip("<>"):
        log.info("bounce address for outbox %s: a report not from the null sender", outbox_id)
        return False
    row = session.get(OutboxEntry, outbox_id)
    if row is None or row.status is DeliveryStatus.FAILED or row.bounced_at is not None:
        log.info("bounce address for outbox %s: a report for nothing waiting for one", outbox_id)
        return False
    sent = sent_message_id(row.content)
    if not sent or sent not in returned_message_ids(message):
        log.warning("bounce for outbox %s does not name the message sent; ignored", outbox_id)
        return False
    row.bounced_at = utcnow()
    row.status = DeliveryStatus.FAILED
    row.last_error = f"bounced after delivery (status {status})"
    row.claimed_by = None
    row.lease_until = None
    row.next_attempt_at = utcnow()
    notices.not_delivered(session, row)
    log.warning("outbox %s bounced (status %s)", outbox_id, status)
    return True
