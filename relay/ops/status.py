"""`relay status`: is the daemon up, and is mail moving?

Owns the health report monitoring scripts read: whether the process named
in the pid file is alive, the outbox by state, the oldest mail waiting to
be sent and the oldest held message, and the last successful delivery.
Healthy means: the daemon is up, it has written its heartbeat within
three ``[daemon] health_interval``s (so it can write the database) with no
problem on it (such as a Maildir it cannot write), and nothing due has
waited longer than ``[daemon] stale_after``. Held mail waits for people, not for the daemon,
so it is reported but does not make the relay unhealthy.

Every figure is one SQL text run by a relay.store.plain Reader: the command
reads over a plain sqlite3 or psycopg connection when it can, so it starts
without loading SQLAlchemy (bench/startup.py).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relay.config import Config
from relay.ops import outbox
from relay.safeguarding.overdue_held import overdue_ids
from relay.store.plain import Reader, first, scalar, timestamp
from relay.store.states import MessageStatus, utcnow

OLDEST_HELD = f"SELECT MIN(received_at) FROM messages WHERE status = '{MessageStatus.HELD.value}'"
LAST_DELIVERY = "SELECT MAX(delivered_at) FROM outbox"
HEARTBEAT = "SELECT beat_at, problem FROM daemon_health WHERE name = :name"

# A daemon whose heartbeat is this many [daemon] health_intervals old cannot write.
MISSED_BEATS = 3


def health_name(pid: int | None = None) -> str:
    """The daemon_health row of one daemon (relay.ops.health writes it): host and pid."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


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


def collect(reader: Reader, config: Config) -> Status:
    now = utcnow()
    pid, running = daemon_pid(config.daemon.pid_file)
    counts = {state.value: count for state, count in outbox.counts(reader).items()}
    oldest = outbox.oldest_waiting(reader)
    oldest_held = timestamp(scalar(reader, OLDEST_HELD))
    waiting_seconds = (now - oldest.created_at).total_seconds() if oldest else None
    problems = []
    if not running:
        problems.append("the daemon is not running" + (f" (stale pid {pid})" if pid else ""))
    if running and pid is not None:
        problems.extend(_daemon_health(reader, config, pid))
    stale = config.daemon.stale_after.total_seconds()
    if waiting_seconds is not None and waiting_seconds > stale:
        problems.append(f"mail has waited {int(waiting_seconds)}s to be sent (limit {int(stale)}s)")
    return Status(
        pid=pid,
        running=running,
        outbox=counts,
        oldest_waiting_seconds=waiting_seconds,
        oldest_held_seconds=(now - oldest_held).total_seconds() if oldest_held else None,
        last_delivery=timestamp(scalar(reader, LAST_DELIVERY)),
        problems=problems,
        # Held longer than [safeguarding] decide_within (relay.safeguarding.overdue alerts on them).
        overdue_held=len(overdue_ids(reader, config.safeguarding, now)),
    )


def _daemon_health(reader: Reader, config: Config, pid: int) -> list[str]:
    """What the daemon's heartbeat says: a stale beat means it cannot write the database."""
    now = utcnow()
    limit = config.daemon.health_interval.total_seconds() * MISSED_BEATS
    row = first(reader, HEARTBEAT, name=health_name(pid))
    beat_at = None if row is None else timestamp(row[0])
    if row is None or beat_at is None:
        try:
            started = datetime.fromtimestamp(config.daemon.pid_file.stat().st_mtime, tz=UTC)
        except OSError:
            return []
        age = (now - started).total_seconds()
        if age <= limit:
            return []  # just started: its first beat may not be written yet
        return [f"the daemon has written no heartbeat in {int(age)}s: is the database writable?"]
    problems = []
    age = (now - beat_at).total_seconds()
    if age > limit:
        problems.append(
            f"the daemon's last heartbeat was {int(age)}s ago: is the database writable?"
        )
    if row[1]:
        problems.append(str(row[1]))
    return problems
