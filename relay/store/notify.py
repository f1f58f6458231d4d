"""PostgreSQL LISTEN/NOTIFY: waking every daemon on the database, on whichever host.

Owns the two channels and both ends of them. A command that queued mail
(`relay approve`, `relay queue retry`, `relay pair create`, ...) or changed a
pair or a participant sends NOTIFY inside the transaction that made the
change, so PostgreSQL delivers it when, and only if, that transaction
commits. Every `relay serve` on PostgreSQL LISTENs on a dedicated connection
of its own (not one from the pool: LISTEN belongs to the session, and a
pooled connection changes hands between transactions) and, on a
notification, wakes its delivery worker or empties its pair directory cache.

Nothing depends on a notification arriving: the worker's poll and the
directory's version check in every commit still hold, so a notification
lost while the connection was down costs time, never correctness. The
connection is checked every PING_SECONDS and reopened after a failure with a
growing pause; right after (re)connecting the daemon wakes once for whatever
it may have missed. SQLite has no NOTIFY; there the host-local socket of
relay.ops.wakeup is the only wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from relay.ops.wakeup import QUEUED_MAIL
from relay.settings import DatabaseSettings
from relay.store.plain import postgres_connect_args

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "relay_outbox"  # mail was queued: claim what is due now
DIRECTORY_CHANNEL = "relay_directory"  # a pair or participant changed: forget cached entries
CHANNELS = (OUTBOX_CHANNEL, DIRECTORY_CHANNEL)
DIRECTORY_CHANGED = "relay_directory_changed"  # Session.info key: it changed a pair or person
PING_SECONDS = 30.0  # a connection silently gone is found within this
FIRST_PAUSE = 0.5  # seconds before reconnecting; doubles up to MAX_PAUSE
MAX_PAUSE = 30.0
APPLICATION_NAME = "relay notifications"  # the listener's connection in pg_stat_activity


def note_changes(session: Session, _flush_context: Any = None) -> None:
    """after_flush hook: remember whether this unit of work queued mail or changed the directory."""
    from relay.store.models import OutboxEntry, Pair, Participant, ParticipantAddress

    if any(isinstance(row, OutboxEntry) for row in (*session.new, *session.dirty)):
        session.info[QUEUED_MAIL] = True
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(row, Pair | Participant | ParticipantAddress) for row in touched):
        session.info[DIRECTORY_CHANGED] = True


def announce(session: Session) -> None:
    """Inside the unit of work, before its commit: NOTIFY what note_changes saw (PostgreSQL)."""
    session.flush()  # the hook sees the last changes too
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if session.info.get(QUEUED_MAIL):
        session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
    if session.info.get(DIRECTORY_CHANGED):
        session.execute(text(f"NOTIFY {DIRECTORY_CHANNEL}"))


def libpq_conninfo(url: str) -> str:
    """A postgresql+psycopg:// SQLAlchemy URL as a libpq URI (password kept: it connects)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresListener:
    """The daemon's end: a dedicated connection LISTENing on both channels, reopened on failure."""

    def __init__(
        self,
        settings: DatabaseSettings,
        on_outbox: Callable[[], None],
        on_directory: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.on_outbox = on_outbox
        self.on_directory = on_directory
        self.connections = 0  # how many times it has (re)connected: logs and tests
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after every failure."""
        import psycopg

        pause = FIRST_PAUSE
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_conninfo(self.settings.url),
                    autocommit=True,
                    application_name=APPLICATION_NAME,
                    **postgres_connect_args(self.settings),
                ) as connection:
                    for channel in CHANNELS:
                        await connection.execute(f"LISTEN {channel}")
                    self.connections += 1
                    if self.connections > 1:
                        log.info("listening for notifications again")
                    pause = FIRST_PAUSE
                    self.listening.set()
                    # Whatever was announced while nobody listened: look once now.
                    self.on_directory()
                    self.on_outbox()
                    await self._listen(connection)
            except Exception as error:  # psycopg.Error, OSError: a database gone is not fatal
                self.listening.clear()
                log.warning(
                    "the PostgreSQL notification connection failed (%s); reconnecting in %.1fs, "
                    "meanwhile delivery polls",
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error),
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    async def _listen(self, connection: Any) -> None:
        while True:
            async for note in connection.notifies(timeout=PING_SECONDS):
                if note.channel == OUTBOX_CHANNEL:
                    self.on_outbox()
                elif note.channel == DIRECTORY_CHANNEL:
                    self.on_directory()
            # Quiet for PING_SECONDS: make sure the connection is still there.
            await connection.execute("SELECT 1")


async def stop_listener(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
