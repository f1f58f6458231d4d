"""The delivery worker: claim due outbox rows, send them, record the outcome.

Owns the outbox's life: queued -> sending -> delivered, or deferred (retried
with exponential backoff) and in the end failed. A row is claimed with a
lease (claimed_by, lease_until) in its own short transaction, so several
`relay serve` processes can share one database: on PostgreSQL the claim uses
SELECT ... FOR UPDATE SKIP LOCKED, on SQLite the single-writer lock
serialises claims. A process that dies leaves leases that expire, and any
worker takes the rows again. Delivery is therefore at-least-once.

When a forwarded message fails for good, its sender gets a notice that
names the partner only by display name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_hex

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from relay.addresses import BounceAddresses, pair_address
from relay.config import Config, DeliverySettings
from relay.db import Store
from relay.models import (
    DeliveryStatus,
    OutboxEntry,
    OutboxKind,
    RelaySecret,
    utcnow,
)
from relay.notices import Notices
from relay.transports import PermanentFailure, TemporaryFailure, Transport

log = logging.getLogger(__name__)

VERP_SECRET_NAME = "verp"
_DUE_STATES = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    recipient: str
    content: bytes
    attempts: int
    created_at: datetime


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{token_hex(3)}"


def retry_delay(settings: DeliverySettings, attempts: int) -> timedelta:
    """Backoff after the attempts-th failed attempt: first, then doubling, capped."""
    delay: timedelta = settings.retry_first * (2 ** max(attempts - 1, 0))
    return min(delay, settings.retry_max)


def bounce_addresses(store: Store, domain: str) -> BounceAddresses:
    with store.session() as session:
        key = session.scalar(select(RelaySecret.value).where(RelaySecret.name == VERP_SECRET_NAME))
    if key is None:
        raise RuntimeError("the database has no VERP secret; was it created by `relay db upgrade`?")
    return BounceAddresses(domain=domain, key=key.encode())


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        config: Config,
        transport: Transport,
        notices: Notices,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.settings = config.delivery
        self.transport = transport
        self.notices = notices
        self.name = name or worker_name()
        self.bounces = bounce_addresses(store, config.relay.domain)
        self._wakeup = asyncio.Event()
        self._in_flight = 0

    def wake(self) -> None:
        """New work is in the outbox: skip the rest of the poll interval."""
        self._wakeup.set()

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # a database hiccup must not kill the worker
                log.exception("delivery round failed; retrying after the poll interval")
                sent = 0
            if sent:
                continue  # there may be more due right away
            self._wakeup.clear()
            waiters = {asyncio.ensure_future(self._wakeup.wait())}
            waiters.add(asyncio.ensure_future(stopping.wait()))
            _, pending = await asyncio.wait(
                waiters,
                timeout=self.settings.poll_interval.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in pending:
                waiter.cancel()

    async def run_once(self) -> int:
        """Claim one batch of due mail and try each; returns how many were claimed."""
        batch = await asyncio.to_thread(self._claim)
        self._in_flight = len(batch)
        try:
            for item in batch:
                await self._deliver(item)
                self._in_flight -= 1
        finally:
            self._in_flight = 0
        return len(batch)

    async def _deliver(self, item: Claimed) -> None:
        envelope_from = self.bounces.for_outbox(item.outbox_id)
        try:
            await self.transport.send(envelope_from, item.recipient, item.content)
        except PermanentFailure as failure:
            await asyncio.to_thread(self._record_failure, item, failure.detail, True)
        except TemporaryFailure as failure:
            await asyncio.to_thread(self._record_failure, item, failure.detail, False)
        except Exception as error:  # an unknown error may be passing: retry, never lose
            log.exception("outbox %s: unexpected error while sending", item.outbox_id)
            detail = f"internal error: {type(error).__name__}"
            await asyncio.to_thread(self._record_failure, item, detail, False)
        else:
            await asyncio.to_thread(self._record_delivered, item)

    # -- database side (worker threads) ---------------------------------------

    def _claim(self) -> list[Claimed]:
        now = utcnow()
        due = or_(
            and_(OutboxEntry.status.in_(_DUE_STATES), OutboxEntry.next_attempt_at <= now),
            and_(OutboxEntry.status == DeliveryStatus.SENDING, OutboxEntry.lease_until < now),
        )
        query = (
            select(OutboxEntry)
            .where(due)
            .order_by(OutboxEntry.next_attempt_at, OutboxEntry.id)
            .limit(self.settings.batch_size)
        )
        if not self.store.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        with self.store.session() as session:
            rows = session.scalars(query).all()
            for row in rows:
                row.status = DeliveryStatus.SENDING
                row.claimed_by = self.name
                row.lease_until = now + self.settings.lease
                row.attempts += 1
            return [
                Claimed(row.id, row.recipient, row.content, row.attempts, row.created_at)
                for row in rows
            ]

    def _still_ours(self, session: Session, item: Claimed) -> OutboxEntry | None:
        row = session.get(OutboxEntry, item.outbox_id, with_for_update=not self.store.is_sqlite)
        if row is None or row.claimed_by != self.name or row.status != DeliveryStatus.SENDING:
            # Our lease ran out and another worker took the row; its outcome wins.
            return None
        return row

    def _record_delivered(self, item: Claimed) -> None:
        with self.store.session() as session:
            row = self._still_ours(session, item)
            if row is None:
                return
            row.status = DeliveryStatus.DELIVERED
            row.delivered_at = utcnow()
            row.claimed_by = None
            row.lease_until = None
            row.last_error = None
        log.info("outbox %s delivered on attempt %d", item.outbox_id, item.attempts)

    def _record_failure(self, item: Claimed, detail: str, permanent: bool) -> None:
        now = utcnow()
        with self.store.session() as session:
            row = self._still_ours(session, item)
            if row is None:
                return
            row.last_error = detail[:2000]
            row.claimed_by = None
            row.lease_until = None
            gave_up = now - row.created_at >= self.settings.give_up_after
            if permanent or gave_up:
                row.status = DeliveryStatus.FAILED
                self._tell_sender(session, row)
                log.warning("outbox %s failed: %s", row.id, detail)
            else:
                row.status = DeliveryStatus.DEFERRED
                row.next_attempt_at = now + retry_delay(self.settings, row.attempts)
                log.info("outbox %s deferred: %s", row.id, detail)

    def _tell_sender(self, session: Session, row: OutboxEntry) -> None:
        if row.kind is not OutboxKind.FORWARD or row.message is None:
            return  # a notice that fails is recorded, never answered with another notice
        message = row.message
        self.notices.queue(
            session,
            "failed",
            message.sender,
            about_message_id=message.id,
            subject=message.subject or "(no subject)",
            partner_name=message.recipient.display_name,
            pair_address=pair_address(message.pair.token, self.config.relay.domain),
        )


async def close_transport(transport: Transport) -> None:
    try:
        await transport.close()
    except Exception:
        log.exception("closing the transport failed")


def requeue(session: Session, outbox_ids: list[int]) -> int:
    """Make failed or deferred rows due now (`relay queue retry`)."""
    result = session.execute(
        update(OutboxEntry)
        .where(
            OutboxEntry.id.in_(outbox_ids),
            OutboxEntry.status.in_((DeliveryStatus.FAILED, DeliveryStatus.DEFERRED)),
        )
        .values(status=DeliveryStatus.DEFERRED, next_attempt_at=utcnow(), last_error=None)
    )
    return int(getattr(result, "rowcount", 0))
