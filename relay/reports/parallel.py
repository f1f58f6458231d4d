"""A piece of a report computed in a second process, on the report's own snapshot.

Owns the parent's side of the second process (its entry point is
relay.reports.second_process). The report's largest pass (the reply times)
is SQL that the database runs in C, but the driver hands every row over
while holding the GIL: a thread would wait on the main thread's Python at
every row. A process has an interpreter of its own and takes the machine's
second core while this one reads the other tables; both read one state of
the database (relay.store.snapshots).

A fresh interpreter rather than a fork: a forked child would inherit the
SQLite library's bookkeeping of the parent's open files and locks, and the
threads of a process that embeds the relay. It is started first thing
(SecondProcess.start(), before the report's own imports), so that both
interpreters start up at once. The two talk in pickles over the child's
stdin and stdout: the job, then READY, the snapshot to join, JOINED, and
finally the result or one line saying what failed. The parent fixes its own
snapshot only when the child is ready to join it at once, so SQLite's write
lock is held for two first reads, not for the child's start-up.

Only the standard library is imported here at first: the command imports
this module before anything heavy.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

from relay.errors import RelayError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from relay.store.db import Store

T = TypeVar("T")
Work = Callable[["Session"], T]
ENTRY_POINT = "relay.reports.second_process"
READY = "ready"
JOINED = "joined"
DONE = "done"
FAILED = "failed"


class ParallelWorkError(RelayError):
    """The second process failed or died: the report cannot be made."""


class SecondProcess:
    """The child interpreter; stopped when the block that started it ends."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child

    @classmethod
    def start(cls) -> SecondProcess:
        command = [sys.executable, "-m", ENTRY_POINT]
        # A session of its own: Ctrl-C in the terminal interrupts the parent only, which
        # stops the child, instead of printing the child's traceback too.
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        return cls(child)

    def __enter__(self) -> SecondProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        for pipe in (self.child.stdin, self.child.stdout):
            if pipe is not None:
                pipe.close()

    def send(self, message: Any) -> None:
        channel = _pipe(self.child.stdin)
        try:
            pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
            channel.flush()
        except BrokenPipeError:
            raise ParallelWorkError(self._gone()) from None

    def expect(self, wanted: str) -> Any:
        try:
            kind, value = pickle.load(_pipe(self.child.stdout))
        except EOFError:
            raise ParallelWorkError(self._gone()) from None
        if kind == FAILED:
            raise ParallelWorkError(f"the report's second process failed: {value}")
        if kind != wanted:
            raise ParallelWorkError(f"the report's second process said {kind!r}, not {wanted!r}")
        return value

    def _gone(self) -> str:
        status = self.child.wait()
        return f"the report's second process ended without an answer (exit status {status})"


class Pending(Generic[T]):
    """The result the second process is computing; result() waits for it."""

    def __init__(self, second: SecondProcess) -> None:
        self._second = second

    def result(self) -> T:
        found: T = self._second.expect(DONE)
        return found


@contextmanager
def beside(
    store: Store,
    session: Session,
    work: Work[T],
    second: SecondProcess | None = None,
) -> Iterator[Pending[T]]:
    """Run work (picklable; called with a session of its own) in the second process (one
    started here if not given), on session's snapshot. session must not have read
    anything yet: its snapshot is fixed here. The child is stopped when the block ends."""
    from relay.store import snapshots

    with second or SecondProcess.start() as started:
        started.send((store.url, store.settings, work))
        started.expect(READY)
        with snapshots.exported(store, session) as snapshot:
            started.send(snapshot)
            started.expect(JOINED)
        yield Pending(started)


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    assert stream is not None  # both were opened as pipes
    return stream
