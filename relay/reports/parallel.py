"""A piece of a report computed in a second process, on the report's own snapshot.

Owns the parent's side of the second process (its entry point is
relay.reports.second_process). The report's largest passes (reply times,
prompts) are SQL that the database runs in C, but the driver hands every row
over while holding the GIL: a thread would wait on the main thread's Python
at every row. A process has an interpreter of its own and takes the
machine's second core while this one reads the other tables; both read one
state of the database (relay.store.snapshots).

A fresh interpreter rather than a fork: a forked child would inherit the
SQLite library's bookkeeping of the parent's open files and locks, and the
threads of a process that embeds the relay. The two talk in pickles over the
child's stdin and stdout: the job, then READY (imports done), the snapshot
to join, JOINED, and finally the result or one line saying what failed. The
parent fixes its own snapshot only when the child is ready to join it at
once, so SQLite's write lock is held for two first reads, not for the
child's start-up.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Generic, TypeVar

from sqlalchemy.orm import Session

from relay.errors import RelayError
from relay.store import snapshots
from relay.store.db import Store

T = TypeVar("T")
Work = Callable[[Session], T]
ENTRY_POINT = "relay.reports.second_process"
READY = "ready"
JOINED = "joined"
DONE = "done"
FAILED = "failed"


class ParallelWorkError(RelayError):
    """The second process failed or died: the report cannot be made."""


class Pending(Generic[T]):
    """The result the second process is computing; result() waits for it."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child

    def result(self) -> T:
        found: T = _expect(self._child, DONE)
        return found


@contextmanager
def beside(
    store: Store, session: Session, work: Work[T], meanwhile: Callable[[], object] = lambda: None
) -> Iterator[Pending[T]]:
    """Run work (picklable; called with a session of its own) in a second process, on
    session's snapshot. session must not have read anything yet: its snapshot is fixed
    here. meanwhile runs while the child starts (it must not read the database). The
    child is stopped if the block is left before its result was taken."""
    child = subprocess.Popen(
        [sys.executable, "-m", ENTRY_POINT], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        _send(child, (store.url, store.settings, work))
        meanwhile()
        _expect(child, READY)
        with snapshots.exported(store, session) as snapshot:
            _send(child, snapshot)
            _expect(child, JOINED)
        yield Pending(child)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def _send(child: subprocess.Popen[bytes], message: Any) -> None:
    channel = _pipe(child.stdin)
    try:
        pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
        channel.flush()
    except BrokenPipeError:
        raise ParallelWorkError(_gone(child)) from None


def _expect(child: subprocess.Popen[bytes], wanted: str) -> Any:
    try:
        kind, value = pickle.load(_pipe(child.stdout))
    except EOFError:
        raise ParallelWorkError(_gone(child)) from None
    if kind == FAILED:
        raise ParallelWorkError(f"the report's second process failed: {value}")
    if kind != wanted:
        raise ParallelWorkError(f"the report's second process said {kind!r}, not {wanted!r}")
    return value


def _gone(child: subprocess.Popen[bytes]) -> str:
    return f"the report's second process ended without an answer (exit status {child.wait()})"


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    assert stream is not None  # both were opened as pipes
    return stream
