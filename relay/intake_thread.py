"""Where intake decides a message, and the long-lived threads that decide PostgreSQL's.

Owns the choice intake.accept_async makes for each message and the threads
for the middle case:

- on the event loop, where nothing in the decision can wait: SQLite (a
  local file in WAL mode, whose reader never waits for a writer), no DNS,
  only pair addresses, a message of ordinary size;
- in the intake threads (IntakeThread), where only the database can wait:
  PostgreSQL with the same conditions otherwise. Its server can stall, so
  not on the loop; the messages wait in one queue for a few threads kept
  for them, and their results reach the loop in one wake-up per batch
  (relay.handoff) instead of one per message (asyncio.to_thread). Two
  threads, not one: with a single thread, deciding one message at a time,
  the daemon delivered fewer messages a second and PostgreSQL spent more CPU
  on each (likely smaller group commits); nor more: four or eight cost more
  context switches for no more mail (bench/RESULTS.md, issue 14, thirteenth
  and seventeenth passes). A stalled server holds the threads that read
  from it, and every message waiting is answered 451 at intake_timeout
  (relay.sources.deadline), as a stalled pool thread's was;
- in a worker thread of asyncio's pool otherwise: DNS (authentication
  "verify", where one slow lookup must hold only its own message), mail to
  the relay's own addresses (written at once: a write can wait for a lock),
  a large message (its parsing would hold every other message's turn).
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Above this a message goes to a pool thread even where it could wait on nothing: its CPU
# would hold every other message for the whole of it; a pool thread hands the GIL back
# every few milliseconds.
DECIDE_HERE_MAX_BYTES = 128 * 1024
# Measured on uvloop at 1 KB x16 on PostgreSQL, alternating rounds, medians of three
# (bench/RESULTS.md, issue 14, seventeenth pass): 1 / 2 / 4 / 8 threads delivered 406 /
# 515 / 475 / 439 msg/s at 1.81 / 1.61 / 1.81 / 1.95 ms of CPU per message; then 2
# against 8 again, 548 against 533 msg/s, 1.42 against 1.37 ms, 12.9 against 14.9
# context switches per message. One thread decides one message at a time; more than
# two only add hand-offs. Not fitted to the benchmark's 16 sessions: with more sessions
# than threads the rest wait in the queue, whatever the count.
INTAKE_THREADS = 2


class Where(enum.Enum):
    """Where a message's decision runs (see the module's docstring)."""

    LOOP = "loop"
    INTAKE_THREAD = "intake thread"
    POOL_THREAD = "pool thread"


def where_decided(
    sqlite: bool, asks_dns: bool, size: int, any_own_address: Callable[[], bool]
) -> Where:
    """The place for a message: any_own_address is asked last (it sorts the recipients)."""
    if asks_dns or size > DECIDE_HERE_MAX_BYTES or any_own_address():
        return Where.POOL_THREAD
    return Where.LOOP if sqlite else Where.INTAKE_THREAD


_Work = tuple[Future[Any], Callable[[], Any]]


class IntakeThread:
    """A few threads that take the work given to them from one queue, in order; started
    on first use."""

    def __init__(self, name: str = "intake", threads: int = INTAKE_THREADS) -> None:
        self._name = name
        self._count = threads
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """work() in one of the threads, taken after what was given before it."""
        future: Future[T] = Future()
        if not self._started:
            self._start()
        self._queue.put((future, work))
        return future

    def close(self) -> None:
        """The threads end once the work queued before this is done (not waited for: work
        stuck in a frozen database would hold the daemon's stop)."""
        with self._lock:
            if self._started:
                for _ in range(self._count):
                    self._queue.put(None)
                self._started = False

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                for number in range(self._count):
                    # Daemon threads: the interpreter's exit must not wait for a stalled one.
                    name = self._name if self._count == 1 else f"{self._name}-{number}"
                    thread = threading.Thread(
                        target=_run, args=(self._queue,), name=name, daemon=True
                    )
                    thread.start()
                self._started = True


def _run(work_queue: queue.SimpleQueue[_Work | None]) -> None:
    while (item := work_queue.get()) is not None:
        future, work = item
        if not future.set_running_or_notify_cancel():
            continue
        try:
            result = work()
        except BaseException as error:
            future.set_exception(error)
        else:
            future.set_result(result)
