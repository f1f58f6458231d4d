"""Where a message's work runs (issue 14, tenth pass): the event loop, threads, hand-offs.

prepare() runs on the event loop where nothing in it can wait (SQLite, no
DNS, only pair addresses, ordinary size), in the intake threads where only
PostgreSQL can (thirteenth pass), and in a worker thread otherwise;
the group writer's finished futures reach the loop in one wake-up per batch
(relay.handoff); the delivery worker waits for its wake-up without tasks of
its own. Nothing here is timed (the figures are bench/throughput.py's).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from relay import handoff
from relay.config import Config
from relay.delivery.notices import Notices
from relay.delivery.transports import make_transport
from relay.delivery.worker import DeliveryWorker, close_transport
from relay.intake import DECIDE_HERE_MAX_BYTES, Incoming, Intake
from relay.intake_thread import Where
from relay.mail.authentication import Authenticator
from relay.store import db
from relay.store.models import Message
from tests.conftest import PairInfo, mail, wire
from tests.dnsserver import LoopbackDns

# -- relay.handoff ---------------------------------------------------------------------


def _counting_wakeups(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Counts the loop's call_soon_threadsafe (each one a write to its self-pipe)."""
    count = [0]
    real = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    return count


def test_a_batch_finished_in_another_thread_wakes_the_loop_once() -> None:
    async def main() -> tuple[list[int], int, int]:
        loop = asyncio.get_running_loop()
        wakeups = _counting_wakeups(loop)
        works: list[Future[int]] = [Future() for _ in range(16)]
        waiters = [handoff.wrap(work) for work in works]
        # A writer thread resolving a commit's sixteen futures while the loop is busy.
        writer = threading.Thread(
            target=lambda: [work.set_result(n) for n, work in enumerate(works)]
        )
        writer.start()
        writer.join()
        results = list(await asyncio.gather(*waiters))
        ours = wakeups[0]
        # asyncio.wrap_future, for comparison: a wake-up per future.
        more: list[Future[int]] = [Future() for _ in range(16)]
        wrapped = [asyncio.wrap_future(work) for work in more]
        writer = threading.Thread(target=lambda: [work.set_result(0) for work in more])
        writer.start()
        writer.join()
        await asyncio.gather(*wrapped)
        return results, ours, wakeups[0] - ours

    results, ours, theirs = asyncio.run(main())
    assert results == list(range(16))
    assert ours == 1
    assert theirs == 16


def test_a_failure_reaches_its_own_waiter_and_a_dropped_waiter_leaves_the_work() -> None:
    async def main() -> None:
        done, failed, dropped = Future[int](), Future[int](), Future[int]()
        waiting_done, waiting_failed, waiting_dropped = map(handoff.wrap, (done, failed, dropped))
        waiting_dropped.cancel()  # nobody awaits it any more (a session gone)

        def finish() -> None:
            dropped.set_result(0)
            failed.set_exception(ValueError("the batch failed"))
            done.set_result(1)

        writer = threading.Thread(target=finish)
        writer.start()
        writer.join()
        assert await waiting_done == 1
        with pytest.raises(ValueError, match="the batch failed"):
            await waiting_failed
        assert waiting_dropped.cancelled()
        assert dropped.result() == 0  # the work itself was not cancelled

    asyncio.run(main())


def test_a_future_finished_before_it_is_wrapped_is_told_on_the_next_turn() -> None:
    async def main() -> int:
        work = Future[int]()
        work.set_result(7)
        return await handoff.wrap(work)

    assert asyncio.run(main()) == 7


# -- where prepare() runs ---------------------------------------------------------------


def _incoming(pair: PairInfo, *recipients: str, size: int = 1000) -> Incoming:
    raw = wire(mail(pair.mentor, pair.address))
    raw += b"x" * max(size - len(raw), 0)
    return Incoming(raw, pair.mentor, recipients or (pair.address,), "smtp")


def test_decided_on_the_loop_only_where_nothing_can_wait(
    config: Config, store: db.Store, pair: PairInfo
) -> None:
    intake = Intake(store, config)
    try:
        plain = _incoming(pair)
        # A local SQLite file can keep a reader waiting for nothing; PostgreSQL can.
        assert intake.decides_here(plain) is store.is_sqlite
        # Where only PostgreSQL can wait: its one intake thread.
        assert intake.where(plain) is (Where.LOOP if store.is_sqlite else Where.INTAKE_THREAD)
        domain = config.relay.domain
        for own in (f"postmaster@{domain}", f"{config.safeguarding.concern_address}@{domain}"):
            to_own = replace(plain, recipients=(pair.address, own))
            assert not intake.decides_here(to_own)
            assert intake.where(to_own) is Where.POOL_THREAD
        large = _incoming(pair, size=DECIDE_HERE_MAX_BYTES + 1)
        assert not intake.decides_here(large)
        assert intake.where(large) is Where.POOL_THREAD
        intake.authenticator = Authenticator("verify")  # DNS
        assert not intake.decides_here(plain)
        assert intake.where(plain) is Where.POOL_THREAD
        intake.authenticator = Authenticator("trust-front", "mx.example")
        assert intake.decides_here(plain) is store.is_sqlite
    finally:
        intake.close()


def _threads_deciding(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads the real Intake.prepare ran on (a spy: prepare itself is not replaced)."""
    seen: list[threading.Thread] = []
    real = Intake.prepare

    def spied(self: Intake, *args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Intake, "prepare", spied)
    return seen


def _stored(store: db.Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(Message.subject).order_by(Message.id)))


def test_the_daemon_decides_on_its_loop_without_dns(
    configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deciding = _threads_deciding(monkeypatch)
    relay, pair, store = configured()
    relay.send(mail(pair.mentor, pair.address, "one"), pair.mentor, pair.address)
    relay.send(mail(pair.mentee, pair.address, "two"), pair.mentee, pair.address)
    assert _stored(store) == ["one", "two"]
    decided = deciding[-2:]  # warm-up decided one of its own at start
    if store.is_sqlite:
        assert decided == [relay.thread, relay.thread]
    else:  # PostgreSQL: in the intake threads, off the loop
        assert relay.thread not in decided
        assert all(thread.name.startswith("intake-") for thread in decided)


def test_the_daemon_decides_in_a_thread_when_dns_is_asked(
    configured: Any, monkeypatch: pytest.MonkeyPatch, dns: LoopbackDns
) -> None:
    deciding = _threads_deciding(monkeypatch)
    relay, pair, store = configured(
        rules='disable = ["new_pair"]\n[rules.authentication]\nmode = "verify"\n' + dns.settings()
    )
    relay.send(mail(pair.mentor, pair.address, "asks dns"), pair.mentor, pair.address)
    assert _stored(store) == ["asks dns"]
    assert dns.zone.queries, "verify mode asked no DNS"
    assert deciding[-1] is not relay.thread
    assert not deciding[-1].name.startswith("intake")  # a pool thread: DNS holds no other


# -- the delivery worker's wait ---------------------------------------------------------


def test_the_worker_wakes_for_mail_and_for_a_stop_within_a_long_poll(
    config: Config, store: db.Store, pair: PairInfo
) -> None:
    async def main() -> int:
        worker = DeliveryWorker(store, config, make_transport(config), Notices(config))
        # A minute between polls: only a wake-up or the stop can end the worker's wait.
        worker.settings = replace(worker.settings, poll_interval=timedelta(seconds=60))
        rounds = 0
        began = [asyncio.Event(), asyncio.Event()]  # the first round, the second
        real = worker.run_once

        async def counted(stopping: asyncio.Event | None = None) -> int:
            nonlocal rounds
            rounds += 1
            began[min(rounds, 2) - 1].set()
            return await real(stopping)

        worker.run_once = counted  # type: ignore[method-assign]
        stopping = asyncio.Event()
        running = asyncio.create_task(worker.run(stopping))
        try:
            await asyncio.wait_for(began[0].wait(), timeout=30)
            worker.wake()  # mail queued: a round at once, not after the minute
            await asyncio.wait_for(began[1].wait(), timeout=30)
            stopping.set()
            await asyncio.wait_for(running, timeout=30)  # the stop ends the wait
        finally:
            worker.writer.close()
            await close_transport(worker.transport)
        return rounds

    assert asyncio.run(main()) == 2
