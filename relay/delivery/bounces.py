"""Bounces (DSNs) coming back to the relay's signed envelope senders.

Owns what happens to mail for ``bounce-<outbox id>-<hmac>@<domain>``: a
delivery status notification whose action is "failed" marks that outbox row
failed and tells the original sender, in a notice that names neither the
recipient's real address nor the raw bounce. Everything else sent there
(a forged signature, a "delayed" report, an auto-reply) is dropped quietly:
it gets the same 250 as a real bounce, so the address reveals nothing.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage, Message

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


def record_bounce(
    session: Session, notices: Notices, outbox_id: int, message: EmailMessage
) -> bool:
    """Mark a forward failed on a genuine failure report; True if something changed."""
    status = failed_status(message)
    if status is None:
        log.info("bounce address for outbox %s got mail that reports no failure", outbox_id)
        return False
    row = session.get(OutboxEntry, outbox_id)
    if row is None or row.status is DeliveryStatus.FAILED:
        return False
    row.status = DeliveryStatus.FAILED
    row.last_error = f"bounced after delivery (status {status})"
    row.claimed_by = None
    row.lease_until = None
    row.next_attempt_at = utcnow()
    notices.not_delivered(session, row)
    log.warning("outbox %s bounced (status %s)", outbox_id, status)
    return True
