"""The delivery worker: claim due outbox rows, send them, record the outcome.

Owns the outbox's life: queued -> sending -> delivered, or deferred (retried
with exponential backoff) and in the end failed. A row is claimed with a
lease (claimed_by, lease_until) in its own short transaction, so several
`relay serve` processes can share one database: on PostgreSQL the claim uses
SELECT ... FOR UPDATE SKIP LOCKED, on SQLite the single-writer lock
serialises claims. A process that dies leaves leases that expire, and any
worker takes the rows again. Delivery is therefore at-least-once; to keep
duplicates rare a worker does not start a send whose lease has run out, and
records an outcome only while the row still carries its own claim (a claim is
the worker's name plus the attempt number, so a lease that expired and was
taken again, even by the same worker, is never overwritten).

The rendered bytes are stored in the outbox row, so every attempt sends the
same Message-ID. `relay queue retry` (requeue) makes failed rows due again
with a fresh backoff schedule and a fresh give-up clock.

When a forwarded message fails for good, its sender gets a notice that
names the partner only by display name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_hex

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.bounces import load_bounce_addresses
from relay.delivery.notices import Notices
from relay.delivery.transports import PermanentFailure, TemporaryFailure, Transport
from relay.settings import DeliverySettings
from relay.store.db import Store
from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus, utcnow

log = logging.getLogger(__name__)

_DUE_STATES = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
# Deliveries are recorded in groups: one commit for several sends. A crash loses
# at most this many records, and those mails are sent again (at-least-once).
RECORD_DELIVERED_EVERY = 10


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    recipient: str
    content: bytes
    attempts: int
    lease_until: datetime


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{token_hex(3)}"


def retry_delay(settings: DeliverySettings, attempts: int) -> timedelta:
    """Backoff after the attempts-th failed attempt: first, then doubling, capped."""
    delay: timedelta = settings.retry_first * (2 ** max(attempts - 1, 0))
    return min(delay, settings.retry_max)


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
        self.bounces = load_bounce_addresses(store, config.relay.domain)
        self.on_attempt: Callable[[str], None] = lambda outcome: None  # metrics hook
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """New work is in the outbox: skip the rest of the poll interval."""
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            # Cleared before looking, so a wake-up that arrives while we look is kept.
            self._wakeup.clear()
            try:
                sent = await self.run_once(stopping)
            except Exception:  # a database hiccup must not kill the worker
                log.exception("delivery round failed; retrying after the poll interval")
                sent = 0
            if sent:
                continue  # there may be more due right away
            if stopping.is_set():
                break
            waiters = {asyncio.ensure_future(self._wakeup.wait())}
            waiters.add(asyncio.ensure_future(stopping.wait()))
            _, pending = await asyncio.wait(
                waiters,
                timeout=self.settings.poll_interval.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in pending:
                waiter.cancel()

    async def run_once(self, stopping: asyncio.Event | None = None) -> int:
        """Claim one batch of due mail and try each; returns how many were claimed.

        When stopping is set part-way, the rows not yet tried are handed back
        at once rather than left to their lease.
        """
        batch = await asyncio.to_thread(self._claim)
        delivered: list[Claimed] = []
        try:
            for position, item in enumerate(batch):
                if stopping is not None and stopping.is_set():
                    await asyncio.to_thread(self._release, batch[position:])
                    break
                if await self._deliver(item):
                    delivered.append(item)
                if len(delivered) >= RECORD_DELIVERED_EVERY:
                    await asyncio.to_thread(self._record_delivered, delivered)
                    delivered = []
        finally:
            if delivered:
                await asyncio.to_thread(self._record_delivered, delivered)
        return len(batch)

    async def _deliver(self, item: Claimed) -> bool:
        """Send one; True when the smarthost took it (the caller records that, in groups)."""
        if utcnow() >= item.lease_until:
            # The batch took longer than the lease: another worker may own the row now.
            log.info(
                "outbox %s: lease ran out before sending; left to the next claim", item.outbox_id
            )
            return False
        envelope_from = self.bounces.for_outbox(item.outbox_id)
        try:
            await self.transport.send(envelope_from, item.recipient, item.content)
        except PermanentFailure as failure:
            self.on_attempt("failed")
            await asyncio.to_thread(self._record_failure, item, failure.detail, True)
        except TemporaryFailure as failure:
            self.on_attempt("deferred")
            await asyncio.to_thread(self._record_failure, item, failure.detail, False)
        except Exception as error:  # an unknown error may be passing: retry, never lose
            log.exception("outbox %s: unexpected error while sending", item.outbox_id)
            self.on_attempt("deferred")
            detail = f"internal error: {type(error).__name__}"
            await asyncio.to_thread(self._record_failure, item, detail, False)
        else:
            self.on_attempt("delivered")
            return True
        return False

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
                Claimed(row.id, row.recipient, row.content, row.attempts, now + self.settings.lease)
                for row in rows
            ]

    def _still_ours(self, session: Session, item: Claimed) -> OutboxEntry | None:
        row = session.get(OutboxEntry, item.outbox_id, with_for_update=not self.store.is_sqlite)
        if (
            row is None
            or row.status != DeliveryStatus.SENDING
            or row.claimed_by != self.name
            or row.attempts != item.attempts
        ):
            # Our lease ran out and the row was claimed again (by another worker, or by
            # this one in a later round); that claim's outcome wins.
            log.info(
                "outbox %s: claim lost while sending; outcome left to its new owner", item.outbox_id
            )
            return None
        return row

    def _release(self, items: list[Claimed]) -> None:
        """Hand back claimed rows that were not tried (the relay is stopping)."""
        with self.store.session() as session:
            for item in items:
                row = self._still_ours(session, item)
                if row is None:
                    continue
                row.attempts -= 1
                row.status = DeliveryStatus.DEFERRED if row.attempts else DeliveryStatus.QUEUED
                row.claimed_by = None
                row.lease_until = None

    def _record_delivered(self, items: list[Claimed]) -> None:
        with self.store.session() as session:
            for item in items:
                row = self._still_ours(session, item)
                if row is None:
                    continue
                row.status = DeliveryStatus.DELIVERED
                row.delivered_at = utcnow()
                row.claimed_by = None
                row.lease_until = None
                row.last_error = None
        for item in items:
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
            since = row.retry_since or row.created_at
            gave_up = now - since >= self.settings.give_up_after
            # A smarthost's reply may quote the recipient; logs never name a participant.
            shown = _without(detail, item.recipient)
            if permanent or gave_up:
                row.status = DeliveryStatus.FAILED
                self._tell_sender(session, row)
                why = "" if permanent else " (gave up retrying)"
                log.warning("outbox %s failed%s: %s", row.id, why, shown)
            else:
                row.status = DeliveryStatus.DEFERRED
                row.next_attempt_at = now + retry_delay(self.settings, row.attempts)
                log.info("outbox %s deferred: %s", row.id, shown)

    def _tell_sender(self, session: Session, row: OutboxEntry) -> None:
        self.notices.not_delivered(session, row)


async def close_transport(transport: Transport) -> None:
    try:
        await transport.close()
    except Exception:
        log.exception("closing the transport failed")


def _without(detail: str, address: str) -> str:
    return re.sub(re.escape(address), "<recipient>", detail, flags=re.IGNORECASE)


RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.DEFERRED)


def requeue(session: Session, outbox_ids: list[int]) -> int:
    """Make failed or deferred rows due now (`relay queue retry`); returns how many.

    The row starts over: attempts from zero (so the backoff starts again at
    retry_first) and the give_up_after clock from now (retry_since), or a
    row retried after it gave up would fail again at its first 4xx.
    """
    now = utcnow()
    result = session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(outbox_ids), OutboxEntry.status.in_(RETRYABLE))
        .values(
            status=DeliveryStatus.QUEUED,
            attempts=0,
            next_attempt_at=now,
            retry_since=now,
            claimed_by=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
