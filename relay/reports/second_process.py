"""The report's second process: `python -m relay.reports.second_process`.

Owns the child's side of relay.reports.parallel: read the job from stdin
(database URL and settings, the work), say READY, join the snapshot the
parent sends, say JOINED, run the work in that snapshot and send its result
(or FAILED and one line). stdout carries only these pickles: anything else
printed on it goes to stderr. The reply pass's module is imported before the
job arrives: the parent is starting up at the same time.

The parent owns the run: the child runs in a session of its own, so Ctrl-C in
the terminal reaches only the parent, which stops it; a parent that is gone
when an answer is ready ends the child quietly. Either way no traceback of
the child's reaches the coordinator's terminal.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from typing import IO, Any

import relay.reports.replies  # noqa: F401  (what the report sends; see the docstring)
from relay.reports.parallel import DONE, FAILED, JOINED, READY
from relay.store import snapshots
from relay.store.db import Store


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    def answer(kind: str, value: Any = None) -> None:
        pickle.dump((kind, value), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()

    try:
        url, settings, work = pickle.load(requests)
        store = Store(url, settings)
        answer(READY)
        snapshot = pickle.load(requests)
        with store.read_session() as session:
            snapshots.join(session, snapshot)
            answer(JOINED)
            answer(DONE, work(session))
    except (EOFError, BrokenPipeError):
        return  # the parent stopped waiting
    except Exception as error:  # the parent raises it, as one line
        with contextlib.suppress(BrokenPipeError):
            answer(FAILED, f"{type(error).__name__}: {error}")


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
    # Closing a pipe whose reader is gone would report the broken pipe at exit.
    with contextlib.suppress(BrokenPipeError):
        answers.close()


if __name__ == "__main__":
    main()
