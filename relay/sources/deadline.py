"""One message's time bound in intake ([smtp] intake_timeout), for the SMTP and LMTP source.

Intake decides a message in a worker thread and commits it in the group
writer's thread (intake.accept_async), and a thread cannot be stopped from
outside: a frozen database or a pathological message keeps it busy. The
client still gets its answer in time: when the bound passes, the source
replies 451 4.3.0 and logs it, and the write is told through the commit
hook (intake's ``in_same_commit``) not to commit any more, so a message the
client was told to retry is never also stored. The hook and the timeout
decide under one lock: either the commit started first (and the source waits
for its real outcome) or the timeout did (and the commit is rolled back).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

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


def _consume(future: asyncio.Future[Any]) -> None:
    # An awaited failure is logged by the caller; an abandoned one (TooLate, or the
    # database error that ended the wait) was already answered with 451.
    if not future.cancelled():
        future.exception()
