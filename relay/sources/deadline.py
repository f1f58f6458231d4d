"""One message's time bound in intake ([smtp] intake_timeout), for the SMTP and LMTP source.

Intake decides a message in a worker thread (or on the event loop, where
nothing in the decision can wait: then only the commit is bounded,
await_commit) and commits it in the group writer's thread
(intake.accept_async), and a thread cannot be stopped from outside: a
frozen database or a pathological message keeps it busy. The
client still gets its answer in time: when the bound passes, the source
replies 451 4.3.0 and logs it, and the write is told through the commit
hook (intake's ``in_same_commit``) not to commit any more, so a message the
client was told to retry is never also stored. The hook and the timeout
decide under one lock: either the commit started first (and the source waits
for its real outcome) or the timeout did (and the commit is rolled back).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from relay import handoff
from relay.intake import Incoming, Intake, Outcome
from relay.mail.replies import Reply

log = logging.getLogger(__name__)

T = TypeVar("T")

_in_flight: set[asyncio.Future[Any]] = set()


def threads_in_flight() -> int:
    """How many bounded calls are still running in a worker thread, answered or not."""
    return sum(1 for future in _in_flight if not future.done())


class TooLate(Exception):
    """Raised inside the unit of work after the client was already told 451: roll back."""


class CommitGuard:
    """Whether a message may still commit, decided once, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "open"  # "open" -> "committing" or "expired"

    def before_commit(self, _session: Session, _reply: Reply, _ids: tuple[int, ...]) -> None:
        with self._lock:
            if self._state == "expired":
                raise TooLate
            self._state = "committing"

    def expire(self) -> bool:
        """True when the commit had not started and now never will."""
        with self._lock:
            if self._state == "open":
                self._state = "expired"
            return self._state == "expired"


async def run_bounded(
    work: Callable[[], T], seconds: float, what: str, guard: CommitGuard | None = None
) -> T | None:
    """work() in a worker thread; None when it did not finish within seconds.

    With a guard, a commit that started before the bound is waited for (once
    more the same time), since its outcome is what the client must be told.
    """
    return await await_bounded(asyncio.to_thread(work), seconds, what, guard)


async def await_bounded(
    work: Awaitable[T], seconds: float, what: str, guard: CommitGuard | None = None
) -> T | None:
    """run_bounded for work that hands its blocking parts to threads itself.

    The work is not cancelled when the bound passes (the thread it waits for
    could not be stopped anyway): it runs on, and a guarded commit is refused.
    """
    future = asyncio.ensure_future(work)
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)
    future.add_done_callback(_consume)  # a result nobody awaits must not be logged as lost
    done, _ = await asyncio.wait({future}, timeout=seconds)
    if not done and guard is not None and not guard.expire():
        done, _ = await asyncio.wait({future}, timeout=seconds)
    if not done:
        log.warning("%s took longer than %ss; answered 451 4.3.0", what, seconds)
        return None
    return future.result()


async def accept_bounded(
    intake: Intake, incoming: Incoming, seconds: float, what: str
) -> Outcome | None:
    """intake.accept_async(), answered within seconds (None: too late, the client gets 451)."""
    guard = CommitGuard()
    if intake.decides_here(incoming):
        # Decided in the session's own task; only the commit can wait, and only it is bounded.
        wait = functools.partial(await_commit, seconds=seconds, what=what, guard=guard)
        return await intake.accept_async(incoming, guard.before_commit, wait)
    accepting = intake.accept_async(incoming, guard.before_commit)
    return await await_bounded(accepting, seconds, what, guard)


async def await_commit(
    written: Future[T], seconds: float, what: str, guard: CommitGuard
) -> T | None:
    """The commit of a message decided on the event loop, awaited at most seconds (once
    more when the commit had started by then); None when the bound passed.

    No task and no thread: the session's own task waits for the group writer's
    future (relay.handoff), so the reply goes out in the loop's turn after the
    commit. When the bound passes only the wait is given up, never the write: the
    guard refuses a commit that has not started.
    """
    for _ in range(2):
        try:
            async with asyncio.timeout(seconds):
                return await handoff.wrap(written)
        except TimeoutError:
            if guard.expire():
                break
    log.warning("%s took longer than %ss; answered 451 4.3.0", what, seconds)
    return None


def _consume(future: asyncio.Future[Any]) -> None:
    # An awaited failure is logged by the caller; an abandoned one (TooLate, or the
    # database error that ended the wait) was already answered with 451.
    if not future.cancelled():
        future.exception()
