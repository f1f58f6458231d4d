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
import contextlib
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.orm import Session

from relay import handoff
from relay.config import Config
from relay.delivery.bounces import load_bounce_addresses
from relay.delivery.claims import (
    CLAIM,
    CLAIMABLE,
    CLAIMABLE_SKIP_LOCKED,
    take_back_dead_claims,
    worker_name,
)
from relay.delivery.notices import Notices
from relay.delivery.transports import PermanentFailure, TemporaryFailure, Transport
from relay.ops.wakeup import QUEUED_MAIL
from relay.settings import DeliverySettings
from relay.store.db import Store
from relay.store.group_commit import GroupWriter, later
from relay.store.models import OutboxEntry, UtcDateTime
from relay.store.states import DeliveryStatus, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    recipient: str
    content: bytes
    attempts: int
    lease_until: datetime


_OUTBOX = cast(Table, OutboxEntry.__table__)
# Built once (see relay.store.messages): the worker's most frequent statement.
_MARK_DELIVERED = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.status == DeliveryStatus.SENDING,
        _OUTBOX.c.claimed_by == bindparam("claimer"),
        _OUTBOX.c.attempts == bindparam("attempt"),
    )
    .values(
        status=DeliveryStatus.DELIVERED,
        delivered_at=bindparam("now", type_=UtcDateTime()),
        claimed_by=None,
        lease_until=None,
        last_error=None,
    )
)


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
        writer: GroupWriter | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.settings = config.delivery
        self.transport = transport
        self.notices = notices
        self.name = name or worker_name()
        # Shared with intake in the daemon: deliveries and new messages share commits.
        self.writer = writer or GroupWriter(store, "delivery-outcomes")
        self.bounces = load_bounce_addresses(store, config.relay.domain)
        self.on_attempt: Callable[[str], None] = lambda outcome: None  # metrics hook
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """New work is in the outbox: skip the rest of the poll interval."""
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        await self._take_back_dead_claims()
        # A stop wakes the worker as new mail does: one waiter for the worker's life, so
        # a round's wait is one event and one timer instead of two tasks.
        stop_watch = asyncio.ensure_future(stopping.wait())
        stop_watch.add_done_callback(lambda _: self._wakeup.set())
        try:
            while not stopping.is_set():
                # Cleared before looking, so a wake-up that arrives while we look is kept.
                self._wakeup.clear()
                try:
                    sent = await self.run_once(stopping)
                except Exception:  # a database hiccup must not kill the worker
                    log.exception("delivery round failed; retrying after the poll interval")
                    sent = 0
                if sent >= self.settings.batch_size:
                    continue  # a full batch: there may be more due right away
                # Otherwise everything due was taken; mail queued since has set _wakeup.
                if stopping.is_set():
                    break
                if not self._wakeup.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.settings.poll_interval.total_seconds()):
                            await self._wakeup.wait()
                if not self._wakeup.is_set():  # an idle poll: a cheap look for dead neighbours
                    await self._take_back_dead_claims()
        finally:
            stop_watch.cancel()

    async def _take_back_dead_claims(self) -> None:
        try:
            taken = await asyncio.to_thread(self.take_back_dead_claims)
        except Exception:
            log.exception("looking for claims of dead processes failed")
            return
        if taken:
            self._wakeup.set()

    def take_back_dead_claims(self) -> int:
        return take_back_dead_claims(self.store)

    async def run_once(self, stopping: asyncio.Event | None = None) -> int:
        """Claim one batch of due mail and try it; returns how many were claimed.

        Up to the transport's `parallel` sends are in flight at once. Each
        delivery is recorded through the group writer, so the outcomes of many
        sends share one commit (intake's messages too, when it shares the
        writer). When stopping is set part-way, the rows not yet tried are
        handed back at once rather than left to their lease.
        """
        # The claim and the outcomes linger in the group writer for a message's commit
        # to share: delivering the last message costs the next one no commit of its own.
        batch = await handoff.wrap(self.writer.submit(self.claim_on, linger=True))
        waiting = iter(batch)  # shared by the senders: each row is taken once
        untried: list[Claimed] = []
        recorded: list[asyncio.Future[None]] = []
        delivered: list[Claimed] = []  # sent, not yet handed to the writer

        def record() -> None:
            if delivered:
                work = functools.partial(self._mark_delivered, items=delivered[:])
                delivered.clear()
                recorded.append(handoff.wrap(self.writer.submit(work, linger=True)))

        async def sender() -> None:
            # Up to `parallel` of these take the rows in claim order: no task per waiting row.
            for item in waiting:
                if stopping is not None and stopping.is_set():
                    untried.append(item)
                elif await self._deliver(item):
                    delivered.append(item)
                    # One turn of the loop: the sends ending in it are recorded as one piece.
                    await asyncio.sleep(0)
                    record()

        parallel = max(1, getattr(self.transport, "parallel", 1))
        try:
            await asyncio.gather(*(sender() for _ in range(min(parallel, len(batch)))))
        finally:
            record()  # sent by an attempt cancelled in its turn: recorded all the same
            if untried:
                await asyncio.to_thread(self._release, untried)
            if recorded:
                await asyncio.gather(*recorded)
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
            await self.transport.send(
                envelope_from, item.recipient, item.content, key=f"outbox-{item.outbox_id}"
            )
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
        with self.store.write_connection() as connection:
            return self.claim_on(connection)

    def claim_on(self, connection: Connection) -> list[Claimed]:
        """Take up to batch_size due rows for this worker, in the caller's transaction."""
        now = utcnow()
        until = now + self.settings.lease
        query = CLAIMABLE if self.store.is_sqlite else CLAIMABLE_SKIP_LOCKED
        rows = connection.execute(query, {"now": now, "limit": self.settings.batch_size}).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        connection.execute(CLAIM, {"ids": ids, "claimer": self.name, "until": until})
        return [
            Claimed(row.id, row.recipient, row.content, row.attempts + 1, until) for row in rows
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
        with self.store.write_connection() as connection:
            self._mark_delivered(connection, items)

    def _mark_delivered(self, connection: Connection, items: list[Claimed]) -> None:
        """Delivered, where the row still carries our claim (else its new owner decides)."""
        for item in items:
            # With the other outcomes of this group commit, in one statement.
            later(
                connection,
                _MARK_DELIVERED,
                {
                    "row_id": item.outbox_id,
                    "attempt": item.attempts,
                    "claimer": self.name,
                    "now": utcnow(),
                },
            )
        # One line per recorded batch, not per row: under load the lines cost more than
        # the update (grouped by attempt, so the line still says which try it was).
        by_attempt: dict[int, list[str]] = {}
        for item in items:
            by_attempt.setdefault(item.attempts, []).append(str(item.outbox_id))
        for attempt, ids in sorted(by_attempt.items()):
            log.info("outbox %s delivered on attempt %d", ",".join(ids), attempt)

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
    count = int(getattr(result, "rowcount", 0))
    if count:
        session.info[QUEUED_MAIL] = True  # `relay queue retry` wakes the daemon
    return count
