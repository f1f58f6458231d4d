"""The threads that decide PostgreSQL's messages (relay.intake_thread.IntakeThread).

One of them runs what it is given in order, in one thread; several take the
work from one queue in order; they hand back results and
errors through concurrent futures, takes new work while earlier work is
stuck (a frozen database holds the thread, not the caller), and ends when
closed.
"""

from __future__ import annotations

import threading

import pytest

from relay.intake_thread import IntakeThread


def test_work_runs_in_order_in_one_thread() -> None:
    worker = IntakeThread(name="intake-test", threads=1)
    ran: list[tuple[int, str]] = []
    try:
        futures = [
            worker.submit(lambda n=n: ran.append((n, threading.current_thread().name)) or n)
            for n in range(20)
        ]
        assert [future.result(timeout=10) for future in futures] == list(range(20))
    finally:
        worker.close()
    assert ran == [(n, "intake-test") for n in range(20)]


def test_an_error_reaches_the_caller_and_the_thread_goes_on() -> None:
    worker = IntakeThread()

    def fails() -> int:
        raise ValueError("bad message")

    try:
        failed = worker.submit(fails)
        after = worker.submit(lambda: 7)
        with pytest.raises(ValueError, match="bad message"):
            failed.result(timeout=10)
        assert after.result(timeout=10) == 7
    finally:
        worker.close()


def test_a_stuck_piece_of_work_holds_the_thread_not_the_caller() -> None:
    worker = IntakeThread(name="intake-stuck", threads=1)
    release = threading.Event()
    try:
        stuck = worker.submit(lambda: release.wait(30))
        queued = worker.submit(lambda: "next")  # returns at once: the caller never waits
        assert not queued.done()
        release.set()
        assert stuck.result(timeout=10) is True
        assert queued.result(timeout=10) == "next"
    finally:
        worker.close()


def test_close_ends_the_thread_after_the_work_before_it() -> None:
    worker = IntakeThread(name="intake-closing", threads=3)
    done = worker.submit(lambda: "last")
    worker.close()
    assert done.result(timeout=10) == "last"
    closing = [t for t in threading.enumerate() if t.name.startswith("intake-closing-")]
    assert len(closing) <= 3
    for thread in closing:
        thread.join(10)
        assert not thread.is_alive()


def test_a_stuck_thread_leaves_the_others_taking_work() -> None:
    worker = IntakeThread(name="intake-some", threads=2)
    release = threading.Event()
    try:
        stuck = worker.submit(lambda: release.wait(30))  # a frozen database, say
        # The other thread takes what comes next.
        assert [worker.submit(lambda n=n: n).result(timeout=10) for n in range(5)] == list(range(5))
        release.set()
        assert stuck.result(timeout=10) is True
    finally:
        worker.close()
