"""Group commit: many writers' rows in one transaction, each told only after its commit.

Owns the writer thread that intake (and the delivery worker's outcomes) hand
their database work to. A piece of work is a function of a Connection; the
writer takes whatever has queued up while the previous commit ran (up to
MAX_BATCH), runs it all in one transaction and commits once, and only then
resolves each caller's future. On SQLite with synchronous=FULL the commit
(an fsync) is the dearest part of a message, so sixteen sessions' messages
cost one fsync instead of sixteen; nothing is answered before its commit, so
a crash between batch and commit loses only mail nobody was told was taken.

If a batch fails, it is rolled back and each piece is run again in its own
transaction, so one bad message fails only its own client (451), never its
neighbours.

A piece may also hand rows to `later()`: they are written at the end of the
batch, every piece's rows for one statement in one executemany, still before
the commit. On PostgreSQL that is one round trip for a batch's forwards or
delivery outcomes instead of one per message, in the one thread every
commit waits for. Those executemany run on the DB-API cursor
(relay.store.direct): SQLAlchemy's execution of them cost more than the
database's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable

from relay.store.db import Store
from relay.store.direct import Direct

log = logging.getLogger(__name__)

MAX_BATCH = 64
# The writer keeps its connection while work keeps coming, and gives it back to the
# pool after this long without any: checking one out and back for every commit cost
# more than SQLite's part of it. Shorter than the pool's idle ping (relay.store.db),
# so a connection held here is never one the pool would have checked first.
HOLD_SECONDS = 1.0
LINGER_SECONDS = 0.01  # the longest lingering work waits for company (submit(linger=True))
QUIET_SECONDS = 0.05  # no ordinary work for this long: lingering work expects none, waits not
T = TypeVar("T")
Work = Callable[[Connection], Any]
_STOP = object()


@dataclass(frozen=True)
class _Item:
    work: Work
    future: Future[Any]
    linger: bool = False


_BATCH = "relay_group_batch"  # connection.info: the Batch being written, while it is


@dataclass
class Batch:
    """What the pieces of one group commit share: their number, rows kept for the end."""

    size: int
    pending: dict[tuple[Executable, tuple[str, ...]], list[dict[str, Any]]] = field(
        default_factory=dict
    )
    reserved: dict[str, list[int]] = field(default_factory=dict)  # ids taken ahead, per table


def current_batch(connection: Connection) -> Batch | None:
    """The group commit this connection is writing, if any (else a plain transaction)."""
    batch: Batch | None = connection.info.get(_BATCH)
    return batch


def later(connection: Connection, statement: Executable, values: dict[str, Any]) -> None:
    """Run statement with values at the end of this group commit, in one executemany with
    every other piece's rows for the same statement object (and keys); at once outside a
    group commit. Nothing in the batch may read the row before the end."""
    batch = current_batch(connection)
    if batch is None:
        connection.execute(statement, values)
        return
    batch.pending.setdefault((statement, tuple(values)), []).append(values)


_DIRECT: dict[tuple[Executable, tuple[str, ...]], Direct] = {}  # per statement and keys


def _write_pending(connection: Connection, batch: Batch) -> None:
    # In the order first used: a message's row before the outbox row naming it.
    for (statement, keys), rows in batch.pending.items():
        direct = _DIRECT.get((statement, keys))
        if direct is None:
            if len(_DIRECT) >= 256:  # statements built per call would otherwise pile up
                _DIRECT.clear()
            direct = _DIRECT.setdefault((statement, keys), Direct(statement, keys))
        direct.executemany(connection, rows)
    batch.pending.clear()


class GroupWriter:
    def __init__(self, store: Store, name: str = "group-commit") -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._closed = False
        self._start_lock = threading.Lock()
        self.batches = 0  # how many commits; with .items, the average batch (metrics, tests)
        self.items = 0
        self._connection: Connection | None = None  # held between commits (HOLD_SECONDS)

    def submit(self, work: Callable[[Connection], T], linger: bool = False) -> Future[T]:
        """Queue work; the future resolves after the commit that holds it (or fails).

        linger: work nobody is waiting to answer (the delivery worker's claims and
        outcomes) waits up to LINGER_SECONDS for other work to share its commit, so
        that it adds a few statements to a message's commit instead of a commit (an
        fsync) of its own that the next message would have to wait for. Only while
        ordinary work keeps coming (some in the last QUIET_SECONDS): otherwise none is
        expected (an approval, the end of a burst being delivered) and it goes at once.
        """
        self.start()
        future: Future[T] = Future()
        self._queue.put(_Item(work, future, linger))
        return future

    def start(self) -> None:
        """Start the writer's thread now (else the first submit does, and waits for it)."""
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the group writer is closed")
            if not self._started:
                self._thread.start()
                self._started = True

    def write(self, work: Callable[[Connection], T]) -> T:
        return self.submit(work).result()

    def close(self) -> None:
        """Finish what is queued (lingering work too), then stop the thread; later submits
        raise."""
        with self._start_lock:
            self._closed = True
            if not self._started:
                return
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        lingering: list[_Item] = []  # waiting for company, oldest first
        due = 0.0  # when the oldest of them is written anyway
        company = float("-inf")  # when ordinary work last came
        while True:
            try:
                if lingering:
                    first = self._queue.get(timeout=max(due - time.monotonic(), 0.0))
                elif self._connection is not None:
                    first = self._queue.get(timeout=HOLD_SECONDS)
                else:
                    first = self._queue.get()
            except queue.Empty:
                if lingering:
                    self._commit(lingering)
                    lingering = []
                else:
                    self._give_back()
                continue
            batch: list[_Item] = []
            stopping = first is _STOP
            item = first
            while not stopping:
                assert isinstance(item, _Item)
                now = time.monotonic()
                if item.linger and now - company < QUIET_SECONDS:
                    if not lingering:
                        due = now + LINGER_SECONDS
                    lingering.append(item)
                else:
                    if not item.linger:
                        company = now
                    batch.append(item)
                if len(batch) + len(lingering) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stopping = item is _STOP
            if batch or stopping or len(lingering) >= MAX_BATCH:
                # Lingering work first: it was queued first.
                if lingering or batch:
                    self._commit(lingering + batch)
                lingering = []
            if stopping:
                self._give_back()
                return

    def _commit(self, batch: list[_Item]) -> None:
        try:
            if self._connection is None:
                self._connection = self.store.engine.connect()
            with self.store.write_on(self._connection) as connection:
                shared = Batch(len(batch))
                connection.info[_BATCH] = shared
                try:
                    results = [item.work(connection) for item in batch]
                    _write_pending(connection, shared)
                finally:
                    del connection.info[_BATCH]
        except Exception as error:
            self._give_back()  # a connection that failed is not trusted again
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            log.info("a batch of %d failed; writing each on its own", len(batch))
            for item in batch:
                self._commit([item])
            return
        self.batches += 1
        self.items += len(batch)
        done = list(zip(batch, results, strict=True))
        # Those who wait to answer a client first: a lingering claim resolved first would
        # have the event loop start its sends before it sends the message's 250.
        for item, result in sorted(done, key=lambda each: each[0].linger):
            item.future.set_result(result)

    def _give_back(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a broken connection: the pool discards it anyway
                log.debug("closing the writer's connection failed", exc_info=True)
