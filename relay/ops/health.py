"""The daemon's own health checks: can it write the database and the Maildir?

Owns the heartbeat: every ``[daemon] health_interval`` the daemon checks the
Maildir outbox is writable (with transport = "maildir") and writes a row to
daemon_health with the time and whatever it found wrong. A check that fails,
and a heartbeat that cannot be written (a read-only or full database), are
logged at ERROR once when they start and at WARNING when they clear.
`relay status` (relay.ops.status, which names the rows) reads the row: a
beat older than three intervals, or a problem on it, makes the relay
unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete

from relay.config import Config
from relay.ops.status import health_name
from relay.store.db import Store
from relay.store.models import DaemonHealth
from relay.store.states import utcnow

log = logging.getLogger(__name__)


def maildir_problem(config: Config) -> str | None:
    """Why the Maildir outbox cannot be written, or None (always None for SMTP)."""
    if config.delivery.transport != "maildir":
        return None
    folder = config.delivery.maildir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".health-"):
            pass
    except OSError as error:
        return f"the Maildir outbox {folder} cannot be written: {error.strerror}"
    for box in _boxes(folder):
        for sub in ("tmp", "new"):
            path = box / sub
            if path.is_dir() and not os.access(path, os.W_OK):
                return f"the Maildir {path} cannot be written"
    return None


def _boxes(folder: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return [entry for entry in folder.iterdir() if entry.is_dir()]
    return []


class HealthWatch:
    """Runs the checks and writes the heartbeat; logs each change of state once."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.name = health_name()
        self._problem: str | None = None
        self._database_failing = False

    def beat(self) -> None:
        problem = maildir_problem(self.config)
        if problem != self._problem:
            if problem:
                log.error("health: %s", problem)
            else:
                log.warning("health: the Maildir outbox is writable again")
            self._problem = problem
        try:
            with self.store.session() as session:
                session.merge(DaemonHealth(name=self.name, beat_at=utcnow(), problem=problem))
                session.execute(
                    delete(DaemonHealth).where(DaemonHealth.beat_at < utcnow() - timedelta(days=1))
                )
        except Exception as error:
            if not self._database_failing:
                log.error("health: cannot write to the database: %s", _short(error))
            self._database_failing = True
            return
        if self._database_failing:
            log.warning("health: the database is writable again")
        self._database_failing = False

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self.beat)
            except Exception:
                log.exception("health check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stopping.wait(), self.config.daemon.health_interval.total_seconds()
                )


def _short(error: Exception) -> str:
    original = getattr(error, "orig", None)
    return str(original or error).splitlines()[0][:300]
