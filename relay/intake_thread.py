"""Where intake decides a message, and the long-lived thread that decides PostgreSQL's.

Owns the choice intake.accept_async makes for each message and the thread
for the middle case:

- on the event loop, where nothing in the decision can wait: SQLite (a
  local file in WAL mode, whose reader never waits for a writer), no DNS,
  only pair addresses, a message of ordinary size;
- in the intake thread (IntakeThread), where only the database can wait:
  PostgreSQL with the same conditions otherwise. Its server can stall, so
  not on the loop; but a thread of asyncio's pool per message cost hand-offs
  (a pool thread woken per message, one loop wake-up per result, the GIL
  passed between several threads at every round trip): here one thread
  takes the messages from a queue in order and its results reach the loop
  in one wake-up per batch (relay.handoff). A stalled server holds the
  thread, and every message waiting for it is answered 451 at intake_timeout
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
    """One thread that runs the work given to it in order; started on first use."""

    def __init__(self, name: str = "intake") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """work() in the thread, after what was given before it."""
        future: Future[T] = Future()
        if self._thread is None:
            self._start()
        self._queue.put((future, work))
        return future

    def close(self) -> None:
        """The thread ends once the work queued before this is done (not waited for: work
        stuck in a frozen database would hold the daemon's stop)."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                # A daemon thread: the interpreter's exit must not wait for a stalled one.
                self._thread = threading.Thread(
                    target=_run, args=(self._queue,), name=self._name, daemon=True
                )
                self._thread.start()


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
