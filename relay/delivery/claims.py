"""Claiming outbox rows: which are due, who holds a claim, taking back dead processes' claims.

Owns the claim's statements (the delivery worker runs them in its transaction) and
the claim's name, ``host:pid:start:random``: the process start time (from
/proc) tells a live process from a later one that reuses the pid. A relay on
the same host can then see that a claim's process is gone and make its rows
due at once, instead of waiting minutes for the lease; a claim made on
another host, or in the older form without a start time, is left to its lease.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from secrets import token_hex
from typing import cast

from sqlalchemy import Table, and_, bindparam, or_, select, update

from relay.store.db import Store
from relay.store.models import OutboxEntry, UtcDateTime
from relay.store.states import DeliveryStatus, utcnow

log = logging.getLogger(__name__)

_OUTBOX = cast(Table, OutboxEntry.__table__)
_DUE_NOW = or_(
    and_(
        _OUTBOX.c.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)),
        _OUTBOX.c.next_attempt_at <= bindparam("now", type_=UtcDateTime()),
    ),
    and_(
        _OUTBOX.c.status == DeliveryStatus.SENDING,
        _OUTBOX.c.lease_until < bindparam("now", type_=UtcDateTime()),
    ),
)
# The due rows' ids first, their content only for those taken: picking and sorting the
# rows with their content read (and sorted) every due row's whole mail, a backlog's
# too (400 due: 0.77 -> 0.42 ms per claim on SQLite).
_PICKED = (
    select(_OUTBOX.c.id)
    .where(_DUE_NOW)
    .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    .limit(bindparam("limit"))
)
_TAKEN = (_OUTBOX.c.id, _OUTBOX.c.recipient, _OUTBOX.c.content, _OUTBOX.c.attempts)
_ORDER = (_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
# Up to `limit` due rows, oldest first (the delivery worker's claim, in its transaction).
CLAIMABLE = select(*_TAKEN).where(_OUTBOX.c.id.in_(_PICKED.scalar_subquery())).order_by(*_ORDER)
# PostgreSQL: the rows are locked, or skipped when another process holds them, where picked.
CLAIMABLE_SKIP_LOCKED = (
    select(*_TAKEN)
    .where(_OUTBOX.c.id.in_(_PICKED.with_for_update(skip_locked=True).scalar_subquery()))
    .order_by(*_ORDER)
)
CLAIM = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=DeliveryStatus.SENDING,
        claimed_by=bindparam("claimer"),
        lease_until=bindparam("until", type_=UtcDateTime()),
        attempts=_OUTBOX.c.attempts + 1,
    )
)


def worker_name() -> str:
    """host:pid:start:random. The process start time tells a live pid from a reused one."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or 0}:{token_hex(3)}"


def process_start(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (/proc), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name in parentheses may hold spaces; the fields after it are plain.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def claim_is_dead_here(claimed_by: str, host: str) -> bool:
    """True only for a claim made on this host by a process that no longer runs.

    A claim from another host, or in an older form without a start time, is
    never judged here: its lease runs out as before.
    """
    parts = claimed_by.split(":")
    if len(parts) != 4 or parts[0] != host or not (parts[1].isdigit() and parts[2].isdigit()):
        return False
    started = int(parts[2])
    return started != 0 and process_start(int(parts[1])) != started


def take_back_dead_claims(store: Store) -> int:
    """Make rows claimed by dead processes on this host due now; returns how many.

    A process killed mid-send leaves rows in `sending` with a lease that would
    hold them for minutes. On this host we can tell that process is gone (its
    pid no longer runs, or runs with another start time); elsewhere we cannot,
    and those leases are honoured.
    """
    host = socket.gethostname()
    now = utcnow()
    with store.session() as session:
        names = session.scalars(
            select(OutboxEntry.claimed_by)
            .where(OutboxEntry.status == DeliveryStatus.SENDING, OutboxEntry.lease_until >= now)
            .distinct()
        ).all()
        dead = [name for name in names if name and claim_is_dead_here(name, host)]
        if not dead:
            return 0
        result = session.execute(
            update(OutboxEntry)
            .where(
                OutboxEntry.status == DeliveryStatus.SENDING,
                OutboxEntry.claimed_by.in_(dead),
            )
            .values(lease_until=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
    count = int(getattr(result, "rowcount", 0))
    log.info("took back %d rows claimed by %d dead local processes", count, len(dead))
    return count
