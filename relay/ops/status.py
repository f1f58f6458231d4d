"""`relay status`: is the daemon up, and is mail moving?

Owns the health report monitoring scripts read: whether the process named
in the pid file is alive, the outbox by state, the oldest mail waiting to
be sent and the oldest held message, and the last successful delivery.
Healthy means: the daemon is up, it has written its heartbeat within
three ``[daemon] health_interval``s (so it can write the database) with no
problem on it (such as a Maildir it cannot write), and nothing due has
waited longer than ``[daemon] stale_after``. Held mail waits for people, not for the daemon,
so it is reported but does not make the relay unhealthy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.ops import outbox
from relay.ops.health import MISSED_BEATS, health_name
from relay.store.models import DaemonHealth, Message, OutboxEntry
from relay.store.states import MessageStatus, utcnow


@dataclass(frozen=True)
class Status:
    pid: int | None
    running: bool
    outbox: dict[str, int]
    oldest_waiting_seconds: float | None
    oldest_held_seconds: float | None
    last_delivery: datetime | None
    problems: list[str] = field(default_factory=list)
    overdue_held: int = 0  # held longer than [safeguarding] decide_within

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "running": self.running,
            "pid": self.pid,
            "outbox": self.outbox,
            "oldest_waiting_seconds": self.oldest_waiting_seconds,
            "oldest_held_seconds": self.oldest_held_seconds,
            "overdue_held": self.overdue_held,
            "last_delivery": self.last_delivery.isoformat() if self.last_delivery else None,
            "problems": self.problems,
        }


def daemon_pid(pid_file: Path) -> tuple[int | None, bool]:
    """The pid in the pid file and whether that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None, False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid, False
    except PermissionError:
        return pid, True  # alive, owned by another user
    return pid, True


def collect(session: Session, config: Config) -> Status:
    now = utcnow()
    pid, running = daemon_pid(config.daemon.pid_file)
    counts = {state.value: count for state, count in outbox.counts(session).items()}
    oldest = outbox.oldest_waiting(session)
    oldest_waiting = oldest.created_at if oldest else None
    oldest_held = session.scalar(
        select(func.min(Message.received_at)).where(Message.status == MessageStatus.HELD)
    )
    last_delivery = session.scalar(select(func.max(OutboxEntry.delivered_at)))
    waiting_seconds = (now - oldest_waiting).total_seconds() if oldest_waiting else None
    problems = []
    if not running:
        problems.append("the daemon is not running" + (f" (stale pid {pid})" if pid else ""))
    if running and pid is not None:
        problems.extend(_daemon_health(session, config, pid))
    stale = config.daemon.stale_after.total_seconds()
    if waiting_seconds is not None and waiting_seconds > stale:
        problems.append(f"mail has waited {int(waiting_seconds)}s to be sent (limit {int(stale)}s)")
    return Status(
        pid=pid,
        running=running,
        outbox=counts,
        oldest_waiting_seconds=waiting_seconds,
        oldest_held_seconds=(now - oldest_held).total_seconds() if oldest_held else None,
        last_delivery=last_delivery,
        problems=problems,
        overdue_held=_overdue_held(session, config, now),
    )


def _overdue_held(session: Session, config: Config, now: datetime) -> int:
    """Held longer than [safeguarding] decide_within (relay.safeguarding.overdue alerts on them)."""
    cutoff = now - config.safeguarding.decide_within
    query = select(func.count(Message.id)).where(
        Message.status == MessageStatus.HELD, Message.received_at < cutoff
    )
    return int(session.scalar(query) or 0)


def _daemon_health(session: Session, config: Config, pid: int) -> list[str]:
    """What the daemon's heartbeat says: a stale beat means it cannot write the database."""
    now = utcnow()
    limit = config.daemon.health_interval.total_seconds() * MISSED_BEATS
    row = session.get(DaemonHealth, health_name(pid))
    if row is None:
        try:
            started = datetime.fromtimestamp(config.daemon.pid_file.stat().st_mtime, tz=UTC)
        except OSError:
            return []
        age = (now - started).total_seconds()
        if age <= limit:
            return []  # just started: its first beat may not be written yet
        return [f"the daemon has written no heartbeat in {int(age)}s: is the database writable?"]
    problems = []
    age = (now - row.beat_at).total_seconds()
    if age > limit:
        problems.append(
            f"the daemon's last heartbeat was {int(age)}s ago: is the database writable?"
        )
    if row.problem:
        problems.append(row.problem)
    return problems
