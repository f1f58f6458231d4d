"""Who holds a claim on an outbox row, and taking back the claims of dead processes.

Owns the claim's name, ``host:pid:start:random``: the process start time (from
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

from sqlalchemy import select, update

from relay.store.db import Store
from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus, utcnow

log = logging.getLogger(__name__)


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
