"""Results of the group writer's thread told to the event loop: one wake-up per batch.

asyncio.wrap_future() tells the loop of each finished future on its own
(call_soon_threadsafe, a write to the loop's self-pipe that also hands the GIL
over), so a commit holding sixteen messages woke the loop sixteen times and
passed the GIL to and fro between the writer and the loop as often. Here the
futures finished while the loop has not yet looked are collected, and the loop
is woken once for all of them.

Unlike wrap_future, cancelling the loop's future does not cancel the work:
what the writer has started it commits, and the outcome is simply not awaited.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class _Handoff:
    """The finished futures of one event loop, waiting for its next turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._finished: collections.deque[tuple[asyncio.Future[Any], Future[Any]]] = (
            collections.deque()
        )
        self._scheduled = False

    def wrap(self, work: Future[T]) -> asyncio.Future[T]:
        waiter: asyncio.Future[T] = self._loop.create_future()
        work.add_done_callback(lambda done: self._finish(waiter, done))
        return waiter

    def _finish(self, waiter: asyncio.Future[Any], done: Future[Any]) -> None:
        # Any thread. Appended before the flag is read, and the loop clears the flag
        # before it empties the deque: a future is either seen by a turn already
        # scheduled or schedules one itself (at worst one turn too many, finding none).
        self._finished.append((waiter, done))
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._tell)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                self._scheduled = False

    def _tell(self) -> None:
        self._scheduled = False
        finished = self._finished
        while finished:
            waiter, done = finished.popleft()
            if waiter.cancelled():
                continue
            if done.cancelled():
                waiter.cancel()
                continue
            error = done.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


_HANDOFFS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Handoff] = (
    weakref.WeakKeyDictionary()
)


def wrap(work: Future[T]) -> asyncio.Future[T]:
    """An asyncio future of the running loop resolved like work, in a batched wake-up."""
    loop = asyncio.get_running_loop()
    handoff = _HANDOFFS.get(loop)
    if handoff is None:
        handoff = _HANDOFFS[loop] = _Handoff(loop)
    return handoff.wrap(work)
