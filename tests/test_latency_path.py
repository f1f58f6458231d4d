"""One connection's DATA -> 250 (issue 14, sixth pass): what the speed-ups must keep.

Delivery's claim and outcomes linger in the group writer and share the next
message's commit instead of taking commits of their own; a daemon warms the
intake path up before it listens, storing nothing. Nothing here is timed (the
figures are bench/throughput.py's): lingering is made to last a minute where a
test must see what shares a commit, so passing proves the sharing, not a speed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, event, func, insert, select

from relay.config import Config
from relay.delivery.notices import Notices
from relay.delivery.transports import make_transport
from relay.delivery.worker import DeliveryWorker
from relay.intake import Intake
from relay.store import db, group_commit
from relay.store.group_commit import GroupWriter
from relay.store.models import Message, OutboxEntry, RelaySecret
from relay.store.states import DeliveryStatus
from relay.warmup import warm_up
from tests.conftest import PairInfo, RunningRelay, Sink, mail, wire
from tests.dnsserver import LoopbackDns

LONG = 60.0  # far longer than any test: lingering work is written only with company


@pytest.fixture
def linger_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lingering work waits a minute, and a minute without messages still counts as traffic."""
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", LONG)
    monkeypatch.setattr(group_commit, "QUIET_SECONDS", LONG)


def _secret(name: str):
    def work(connection: Connection) -> str:
        connection.execute(insert(RelaySecret).values(name=name, value="1"))
        return name

    return work


def _stored_secrets(store: db.Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(RelaySecret.name)))


@pytest.fixture
def write_transactions(store: db.Store) -> Iterator[list[str]]:
    """The names of the threads that began a write transaction (BEGIN IMMEDIATE)."""
    begun: list[str] = []

    def on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(db.READ_ONLY, False):
            begun.append(threading.current_thread().name)

    event.listen(store.engine, "begin", on_begin)
    yield begun
    event.remove(store.engine, "begin", on_begin)


# -- lingering work in the group writer ------------------------------------------


def test_lingering_work_waits_for_the_next_commit_and_shares_it(
    store: db.Store, linger_long: None
) -> None:
    writer = GroupWriter(store)
    writer.write(_secret("traffic"))  # messages are coming
    lingering = writer.submit(_secret("outcome"), linger=True)
    message = writer.submit(_secret("message"))
    assert message.result(30) == "message"
    assert lingering.result(30) == "outcome"
    assert writer.batches == 2 and writer.items == 3
    writer.close()
    assert _stored_secrets(store) >= {"outcome", "message"}


def test_whoever_waits_to_answer_a_client_is_told_first(store: db.Store, linger_long: None) -> None:
    """A lingering claim told first would let the event loop start its sends before the
    message's 250 goes out."""
    writer = GroupWriter(store)
    started, release = threading.Event(), threading.Event()

    def hold(connection: Connection) -> None:
        started.set()
        assert release.wait(10)  # the two below queue up behind this commit

    writer.submit(hold)
    assert started.wait(10)
    told: list[str] = []
    lingering = writer.submit(_secret("claim"), linger=True)
    lingering.add_done_callback(lambda _: told.append("claim"))
    message = writer.submit(_secret("message"))
    message.add_done_callback(lambda _: told.append("message"))
    release.set()
    message.result(30)
    lingering.result(30)
    writer.close()
    assert told == ["message", "claim"]


def test_lingering_work_without_company_is_written_on_its_own(store: db.Store) -> None:
    writer = GroupWriter(store)
    writer.write(_secret("traffic"))
    assert writer.submit(_secret("alone"), linger=True).result(30) == "alone"  # hang guard
    assert writer.batches == 2
    writer.close()
    assert "alone" in _stored_secrets(store)


def test_lingering_work_goes_at_once_when_no_messages_come(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval's claim, or the end of a burst being delivered: no company is coming."""
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", LONG)  # QUIET_SECONDS as shipped
    writer = GroupWriter(store)
    assert writer.submit(_secret("approved"), linger=True).result(30) == "approved"
    writer.close()
    assert "approved" in _stored_secrets(store)


def test_closing_the_writer_writes_lingering_work(store: db.Store, linger_long: None) -> None:
    writer = GroupWriter(store)
    writer.write(_secret("traffic"))
    lingering = writer.submit(_secret("at-stop"), linger=True)
    writer.close()
    assert lingering.result(0) == "at-stop"
    assert "at-stop" in _stored_secrets(store)


def test_a_failing_lingering_piece_fails_alone(store: db.Store, linger_long: None) -> None:
    writer = GroupWriter(store)
    writer.write(_secret("traffic"))

    def broken(connection: Connection) -> None:
        raise ValueError("a broken outcome")

    lingering = writer.submit(broken, linger=True)
    message = writer.submit(_secret("message"))
    assert message.result(30) == "message"
    assert isinstance(lingering.exception(30), ValueError)
    writer.close()
    assert "message" in _stored_secrets(store)


# -- delivery rides on intake's commits ----------------------------------------------


def test_delivering_costs_no_commit_of_its_own_while_mail_keeps_coming(
    store: db.Store,
    config: Config,
    pair: PairInfo,
    sink: Sink,
    write_transactions: list[str],
    linger_long: None,
) -> None:
    """The worker's claim and its "delivered" go into the commits of the messages that
    arrive meanwhile (here: two made-up ones), not into transactions of their own."""
    writer = GroupWriter(store)
    worker = DeliveryWorker(store, config, make_transport(config), Notices(config), None, writer)
    writer.write(_secret("message 0"))  # messages are coming
    del write_transactions[:]  # the worker's signing secret, message 0

    async def scenario() -> int:
        round_ = asyncio.ensure_future(worker.run_once())
        await asyncio.sleep(0.2)  # the claim is queued and lingers
        assert not round_.done()
        await asyncio.wrap_future(writer.submit(_secret("message 1")))
        await asyncio.to_thread(sink.wait_for, 2)  # the introductions, claimed with message 1
        await asyncio.sleep(0.2)  # their "delivered" is queued and lingers
        assert not round_.done()
        await asyncio.wrap_future(writer.submit(_secret("message 2")))
        claimed = await asyncio.wait_for(round_, 30)
        await worker.transport.close()
        return claimed

    assert asyncio.run(scenario()) == 2
    writer.close()
    assert write_transactions == ["group-commit", "group-commit"]  # the two messages' only
    with store.session() as session:
        statuses = set(session.scalars(select(OutboxEntry.status)))
    assert statuses == {DeliveryStatus.DELIVERED}


def test_one_connection_stream_is_delivered_whole(configured, sink: Sink) -> None:
    """With the default linger: every message of a back-to-back stream reaches the
    partner, the last one too (its claim and outcome were written without company)."""
    relay, info, _ = configured()
    sink.wait_for(2)  # the introductions
    with relay.smtp() as client:
        for n in range(12):
            message = mail(info.mentor, info.address, f"stream {n}", f"message number {n}")
            client.sendmail(info.mentor, [info.address], wire(message))
    received = sink.wait_for(2 + 12, timeout=30)
    subjects = {str(each.message["Subject"]) for each in received}
    assert {f"stream {n}" for n in range(12)} <= subjects


# -- warming up ------------------------------------------------------------------------


def test_warm_up_runs_the_path_and_stores_nothing(
    store: db.Store, config: Config, pair: PairInfo, caplog: pytest.LogCaptureFixture
) -> None:
    intake = Intake(store, config)
    worker = DeliveryWorker(store, config, make_transport(config), Notices(config))
    before = _outbox(store)
    with caplog.at_level(logging.INFO):
        assert warm_up(intake, worker)
    intake.close()
    assert intake.directory.version is None  # nothing cached that RCPT could answer from
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert _outbox(store) == before  # the introductions: still queued, never claimed
    assert all(status is DeliveryStatus.QUEUED for _, status, _ in before)
    assert not [r for r in caplog.records if r.name == "relay.intake"]  # no decision logged


def _outbox(store: db.Store) -> list[tuple[int, DeliveryStatus, int]]:
    with store.session() as session:
        rows = session.execute(
            select(OutboxEntry.id, OutboxEntry.status, OutboxEntry.attempts).order_by(
                OutboxEntry.id
            )
        )
        return [(row.id, row.status, row.attempts) for row in rows]


def test_warm_up_without_an_open_pair_does_nothing(store: db.Store, config: Config) -> None:
    intake = Intake(store, config)
    assert not warm_up(intake)
    intake.close()


def test_a_failed_warm_up_is_logged_and_the_daemon_still_serves(
    config: Config,
    store: db.Store,
    pair: PairInfo,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_prepare = Intake.prepare
    calls = {"n": 0}

    def fails_first(self: Intake, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a warm-up that breaks")
        return real_prepare(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Intake, "prepare", fails_first)
    with caplog.at_level(logging.WARNING, logger="relay.warmup"):
        relay = RunningRelay(config)
    try:
        assert "warming up the intake path failed" in caplog.text
        relay.send(
            mail(pair.mentor, pair.address, "after", "still served"), pair.mentor, pair.address
        )
        subjects = {str(each.message["Subject"]) for each in sink.wait_for(3, timeout=30)}
        assert "after" in subjects
    finally:
        relay.stop()


def test_warm_up_asks_no_dns_in_verify_mode(configured, dns: LoopbackDns) -> None:
    """The made-up message is never authenticated: a start must not look up a
    participant's domain (nor wait for a DNS server that does not answer)."""
    relay, info, _ = configured(rules='[rules.authentication]\nmode = "verify"\n' + dns.settings())
    assert relay.running.intakes[0].directory.lookup  # the daemon started and warmed up
    assert dns.zone.queries == []
    relay.send(mail(info.mentor, info.address, "checked"), info.mentor, info.address)
    assert dns.zone.queries  # a real message is checked: the server is the one in use
