"""Never lose a message: retries, failures, leases, stopping, crashes, several processes.

Everything here runs the real thing: `relay serve` as a subprocess (killed
with SIGKILL, stopped with SIGTERM/SIGINT) or in-process through
RunningRelay, a real aiosmtpd smarthost whose answers the test controls,
and the real database (SQLite, or PostgreSQL with RELAY_TEST_DATABASE_URL).
Tests marked ``postgres`` need PostgreSQL: .ci/run deselects them in its
SQLite run and runs them in its PostgreSQL run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select, update

from relay.cli import cli
from relay.config import Config, load_config
from relay.delivery.notices import Notices
from relay.delivery.transports import make_transport
from relay.delivery.worker import DeliveryWorker, retry_delay
from relay.settings import DeliverySettings
from relay.store import db
from relay.store.models import (
    DeliveryStatus,
    Message,
    MessageStatus,
    OutboxEntry,
    OutboxKind,
    utcnow,
)
from tests.conftest import (
    MENTEE,
    TEST_DATABASE_URL,
    PairInfo,
    Received,
    RunningRelay,
    free_port,
    mail,
    make_pair,
    wait_for,
    write_config,
)

# No rate or new-pair holds: these tests send a lot of mail between one pair.
NO_HOLDS = 'disable = ["new_pair", "rate"]'
FAST_DELIVERY = 'transport = "smtp"\npoll_interval = "1s"\nretry_first = "1s"\nretry_max = "2s"'


# -- a smarthost the test controls ---------------------------------------------


@dataclass
class Smarthost:
    """An aiosmtpd handler that records every attempt and answers as told."""

    refuse_data: str | None = None  # e.g. "451 4.3.0 try later"
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    delay: float = 0.0  # seconds to take over each DATA
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (Subject, Message-ID)
    received: list[Received] = field(default_factory=list)
    in_data: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content)
        parsed = message_from_bytes(data, policy=policy.default)
        self.attempts.append((str(parsed["Subject"]), str(parsed["Message-ID"])))
        self.in_data.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_data:
            return self.refuse_data
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data))
        return "250 2.0.0 OK"

    def subjects(self) -> Counter[str]:
        return Counter(str(each.message["Subject"]) for each in self.received)

    def message_ids(self) -> Counter[str]:
        return Counter(str(each.message["Message-ID"]) for each in self.received)


class SmarthostServer:
    """Start and stop a Smarthost on a fixed port (a smarthost that goes down and up)."""

    def __init__(self, handler: Smarthost, port: int | None = None) -> None:
        self.handler = handler
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smarthost() -> Iterator[SmarthostServer]:
    server = SmarthostServer(Smarthost())
    yield server
    server.stop()


def relay_config(
    folder: Path, database_url: str, smarthost_port: int, delivery: str = FAST_DELIVERY
) -> Path:
    return write_config(
        folder,
        database_url,
        delivery=delivery,
        smarthost=f'host = "127.0.0.1"\nport = {smarthost_port}\ntimeout = "5s"',
        rules=NO_HOLDS,
    )


def prepared(path: Path) -> tuple[Config, db.Store, PairInfo]:
    """The configuration, a database at head, and one pair (whose introductions are queued)."""
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    return config, store, make_pair(store, config)


def outbox(store: db.Store) -> list[OutboxEntry]:
    with store.session() as session:
        return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def forwards(store: db.Store) -> list[OutboxEntry]:
    return [row for row in outbox(store) if row.kind is OutboxKind.FORWARD]


# -- backoff, retries and failure ----------------------------------------------


def test_backoff_defaults_double_from_minutes_to_an_hour_and_give_up_after_5_days():
    settings = DeliverySettings()
    delays = [retry_delay(settings, attempt) for attempt in range(1, 8)]
    assert [int(d.total_seconds() // 60) for d in delays] == [5, 10, 20, 40, 60, 60, 60]
    assert settings.give_up_after == timedelta(days=5)


def test_dead_smarthost_mail_waits_then_arrives_once_with_one_message_id(
    tmp_path: Path, database_url: str
):
    handler = Smarthost()
    down = SmarthostServer(handler)  # not started: connection refused
    config, store, info = prepared(relay_config(tmp_path, database_url, down.port))
    relay = RunningRelay(config)
    try:
        subjects = [f"while down {n}" for n in range(3)]
        for subject in subjects:
            relay.send(mail(info.mentor, info.address, subject), info.mentor, info.address)

        # Down: every row (two introductions, three forwards) is retried and stays deferred.
        wait_for(
            lambda: all(
                row.status is DeliveryStatus.DEFERRED and row.attempts >= 2 for row in outbox(store)
            ),
            timeout=20,
            what="every row deferred after two attempts",
        )
        assert all("unreachable" in (row.last_error or "") for row in outbox(store))

        # Up, but answering 451: still retried, the 4xx recorded.
        handler.refuse_data = "451 4.3.0 try later"
        down.start()
        wait_for(
            lambda: set(subjects) <= {s for s, _ in handler.attempts},
            timeout=20,
            what="a refused attempt of each message",
        )
        # The attempt reached the smarthost a moment before the worker recorded its 451.
        wait_for(
            lambda: any("451 4.3.0 try later" in (row.last_error or "") for row in forwards(store)),
            what="a 451 recorded",
        )
        assert all(row.status is not DeliveryStatus.FAILED for row in outbox(store))

        # Healthy: everything arrives, once.
        handler.refuse_data = None
        wait_for(lambda: len(handler.received) >= 5, timeout=20, what="all five mails")
        wait_for(lambda: all(r.status is DeliveryStatus.DELIVERED for r in outbox(store)))
        assert all(handler.subjects()[subject] == 1 for subject in subjects)

        # Every attempt of a message carried the same Message-ID: the stored one.
        with store.session() as session:
            stored = {m.subject: m.relay_message_id for m in session.scalars(select(Message))}
        for subject in subjects:
            tried = {mid for s, mid in handler.attempts if s == subject}
            assert tried == {stored[subject]}, subject
    finally:
        relay.stop()
        down.stop()
        store.dispose()


def test_permanent_failure_fails_at_once_and_tells_the_sender_without_the_address(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer
):
    smarthost.handler.refuse_rcpt[MENTEE[0]] = "550 5.1.1 <" + MENTEE[0] + ">: no such user"
    smarthost.start()
    config, store, info = prepared(relay_config(tmp_path, database_url, smarthost.port))
    relay = RunningRelay(config)
    try:
        relay.send(mail(info.mentor, info.address, "Bad news"), info.mentor, info.address)
        notice = wait_for(
            lambda: [
                r
                for r in smarthost.handler.received
                if "Not delivered" in str(r.message["Subject"])
            ],
            what="the failure notice",
        )[0]
        (forward,) = forwards(store)
        assert forward.status is DeliveryStatus.FAILED
        assert forward.attempts == 1  # a 5xx is not retried
        assert forward.last_error is not None and forward.last_error.startswith("550 5.1.1")

        assert notice.recipients == [info.mentor]
        assert '"Bad news"' in notice.message.get_content()
        assert "Ben Mentee" in notice.message.get_content()
        assert info.mentee.lower() not in notice.data.decode(errors="replace").lower()
        # Only the notice reached anyone; the failed introduction to the mentee
        # is recorded but answered with no notice of its own.
        assert [r.recipients for r in smarthost.handler.received] == [[info.mentor]] * 2
    finally:
        relay.stop()
        store.dispose()


def test_retry_after_giving_up_gets_a_fresh_give_up_clock(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer
):
    smarthost.handler.refuse_rcpt[MENTEE[0]] = "451 4.2.1 mailbox busy"
    smarthost.start()
    delivery = FAST_DELIVERY + '\ngive_up_after = "1d"'
    path = relay_config(tmp_path, database_url, smarthost.port, delivery)
    config, store, info = prepared(path)
    relay = RunningRelay(config)
    try:
        relay.send(mail(info.mentor, info.address, "Slow box"), info.mentor, info.address)
        wait_for(lambda: forwards(store) and forwards(store)[0].attempts >= 1)
        forward_id = forwards(store)[0].id
        # The row has been waiting for longer than give_up_after: the next 4xx gives up.
        with store.session() as session:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == forward_id)
                .values(created_at=utcnow() - timedelta(days=2))
            )
        wait_for(lambda: forwards(store)[0].status is DeliveryStatus.FAILED, what="giving up")
        wait_for(
            lambda: any(
                "Not delivered" in str(r.message["Subject"]) for r in smarthost.handler.received
            ),
            what="the failure notice",
        )

        result = CliRunner().invoke(cli, ["--config", str(path), "queue", "retry", str(forward_id)])
        assert result.exit_code == 0, result.output
        # Still 451: retried, and deferred again rather than failed at once.
        wait_for(lambda: forwards(store)[0].attempts >= 1, what="the first attempt after retry")
        wait_for(lambda: forwards(store)[0].status is not DeliveryStatus.SENDING)
        assert forwards(store)[0].status is DeliveryStatus.DEFERRED

        smarthost.handler.refuse_rcpt.clear()
        wait_for(lambda: forwards(store)[0].status is DeliveryStatus.DELIVERED, what="delivery")
        # The introduction was deferred by the same 451 and retries on its own backoff.
        wait_for(
            lambda: (
                len([r for r in smarthost.handler.received if info.mentee in r.recipients]) == 2
            ),
            what="the introduction and the forward",
        )
    finally:
        relay.stop()
        store.dispose()


# -- leases --------------------------------------------------------------------


def test_a_dead_workers_claims_expire_and_another_worker_delivers(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer
):
    smarthost.start()
    delivery = FAST_DELIVERY + '\nlease = "1s"'
    config, store, _ = prepared(relay_config(tmp_path, database_url, smarthost.port, delivery))
    dead = DeliveryWorker(store, config, make_transport(config), Notices(config), name="dead:1")
    claimed = dead._claim()  # claims the two introductions, then "dies"
    assert len(claimed) == 2
    assert {row.claimed_by for row in outbox(store)} == {"dead:1"}

    relay = RunningRelay(config)
    try:
        wait_for(lambda: len(smarthost.handler.received) >= 2, what="the introductions")
        wait_for(lambda: all(r.status is DeliveryStatus.DELIVERED for r in outbox(store)))
        assert [row.attempts for row in outbox(store)] == [2, 2]
        # The dead worker comes back and reports its old claims: nothing changes.
        for item in claimed:
            dead._record_failure(item, "451 too late", permanent=False)
        assert all(r.status is DeliveryStatus.DELIVERED for r in outbox(store))
        assert all(r.last_error is None for r in outbox(store))
    finally:
        relay.stop()
        store.dispose()


def test_a_claim_taken_again_by_the_same_worker_is_not_overwritten_by_the_old_one(
    tmp_path: Path, database_url: str
):
    delivery = 'transport = "smtp"\nlease = "0s"'
    config, store, _ = prepared(relay_config(tmp_path, database_url, free_port(), delivery))
    worker = DeliveryWorker(store, config, make_transport(config), Notices(config), name="w:1")
    first = worker._claim()
    second = worker._claim()  # the 0s lease has run out: claimed again, attempt 2
    assert [item.attempts for item in second] == [2, 2]
    worker._record_failure(first[0], "550 5.1.1 stale outcome", permanent=True)
    assert all(row.status is DeliveryStatus.SENDING for row in outbox(store))
    worker._record_delivered([second[0]])
    assert outbox(store)[0].status is DeliveryStatus.DELIVERED
    store.dispose()


def test_new_mail_wakes_the_worker_without_waiting_for_the_poll(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer
):
    smarthost.start()
    delivery = 'transport = "smtp"\npoll_interval = "1h"'
    config, store, info = prepared(relay_config(tmp_path, database_url, smarthost.port, delivery))
    relay = RunningRelay(config)
    try:
        wait_for(lambda: len(smarthost.handler.received) >= 2, what="the introductions")
        for n in range(3):  # with an hour between polls, only the wake-up can deliver these
            relay.send(mail(info.mentor, info.address, f"Wake {n}"), info.mentor, info.address)
            wait_for(lambda n=n: smarthost.handler.subjects()[f"Wake {n}"] == 1, what=f"Wake {n}")
    finally:
        relay.stop()
        store.dispose()


def test_stop_finishes_the_delivery_in_flight_and_hands_back_the_rest(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer
):
    smarthost.handler.delay = 1.0
    smarthost.start()
    path = relay_config(tmp_path, database_url, smarthost.port)
    # One smarthost session, so one mail is in flight and the other is still to try.
    path.write_text(path.read_text().replace('timeout = "5s"', 'timeout = "5s"\nconnections = 1'))
    config, store, _ = prepared(path)
    relay = RunningRelay(config)
    try:
        assert smarthost.handler.in_data.wait(10), "no delivery started"
    finally:
        relay.stop()  # grace 5s: the first introduction is in flight
    rows = outbox(store)
    assert [row.status for row in rows] == [DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED]
    assert rows[1].claimed_by is None and rows[1].attempts == 0
    assert len(smarthost.handler.received) == 1
    store.dispose()


# -- `relay serve` as a process --------------------------------------------------


class Served:
    """`relay -c CONFIG serve` as a subprocess, its output in a log file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.port = load_config(config_path).smtp.port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "relay", "-c", str(self.config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # Logged after the signal handlers are in place: from here SIGTERM is a clean stop.
        wait_for(
            lambda: self.log().count("is running") >= self.starts or self._died(),
            timeout=30,
            what="relay serve to start",
        )
        assert not self._died(), self.log()[-3000:]

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no chance to clean up
        self.process.wait(10)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 40) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def processes() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for each in started:
        each.cleanup()


def serve(processes: list[Served], path: Path, name: str = "relay") -> Served:
    served = Served(path, path.parent / f"{name}.log")
    processes.append(served)
    served.start()
    return served


def greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        return connection.makefile("rb").readline()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_lets_data_finish_refuses_new_sessions_and_exits_0(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer, processes, signum: int
):
    smarthost.start()
    path = relay_config(tmp_path, database_url, smarthost.port)
    _, store, info = prepared(path)
    served = serve(processes, path)
    assert served.process is not None
    data = mail(info.mentor, info.address, "Half way").as_bytes(policy=policy.SMTP)
    head, tail = data[: len(data) // 2], data[len(data) // 2 :]
    head, tail = head[: head.rindex(b"\r\n") + 2], data[head.rindex(b"\r\n") + 2 :]
    client = smtplib.SMTP("127.0.0.1", served.port, timeout=10)
    try:
        client.ehlo()
        assert client.mail(info.mentor)[0] == 250
        assert client.rcpt(info.address)[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(head)

        served.process.send_signal(signum)
        # Stopping: a new session is refused with 421 ...
        refused = wait_for(lambda: greeting(served.port).startswith(b"421") or None, what="421")
        assert refused
        assert greeting(served.port).startswith(b"421 4.3.2")
        # ... while the DATA under way is still taken, committed and acknowledged.
        client.send(tail + b".\r\n")
        code, _ = client.getreply()
        assert code == 250
        # A new transaction on the open session is not taken: 421, or the session is
        # already closed (the server closes sessions once no DATA is under way).
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            assert client.docmd("MAIL", f"FROM:<{info.mentor}>")[0] == 421
    finally:
        client.close()
    assert served.process.wait(40) == 0, served.log()[-3000:]
    with store.session() as session:
        stored = session.scalars(select(Message).where(Message.subject == "Half way")).one()
        assert stored.status is MessageStatus.QUEUED
    assert any(row.message_id == stored.id for row in forwards(store))
    store.dispose()


@dataclass
class Clients:
    """SMTP clients that send numbered messages and remember which got a 250."""

    port: int
    info: PairInfo
    acked: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # attempts that got no 250
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_one(self, subject: str, retry_for: float) -> None:
        sender, to = (
            (self.info.mentor, self.info.address)
            if zlib.crc32(subject.encode()) % 2
            else (self.info.mentee, self.info.address)
        )
        data = mail(sender, to, subject).as_bytes()
        deadline = time.monotonic() + retry_for
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
            except (OSError, smtplib.SMTPException) as error:
                self._note(subject, error)
            else:
                try:
                    client.sendmail(sender, [to], data)
                except (OSError, smtplib.SMTPException) as error:
                    self._note(subject, error)
                else:
                    with self.lock:
                        self.acked.add(subject)
                    return
                finally:
                    try:
                        client.quit()
                    except (OSError, smtplib.SMTPException):
                        client.close()
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def _note(self, subject: str, error: BaseException) -> None:
        with self.lock:
            self.refused.append(f"{subject}: {type(error).__name__}")

    def run(
        self, tag: str, count: int, pause: tuple[float, float], retry_for: float
    ) -> threading.Thread:
        rng = random.Random(tag)

        def work() -> None:
            for n in range(count):
                self.send_one(f"{tag}-{n}", retry_for)
                time.sleep(rng.uniform(*pause))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread


def test_crash_kill_9_five_times_loses_nothing_that_got_a_250(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer, processes
):
    smarthost.start()
    delivery = FAST_DELIVERY + '\nlease = "2s"\nbatch_size = 20'
    path = relay_config(tmp_path, database_url, smarthost.port, delivery)
    _, store, info = prepared(path)
    store.dispose()
    served = serve(processes, path)
    clients = Clients(served.port, info)
    threads = [clients.run(f"crash{t}", 20, (0.02, 0.2), retry_for=60) for t in range(4)]

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"crash test seed {seed}")
    kills = 0
    while kills < 6:
        time.sleep(rng.uniform(0.2, 1.0))
        served.kill()
        kills += 1
        served.start()
    for thread in threads:
        thread.join(90)
    assert not any(thread.is_alive() for thread in threads)
    assert len(clients.acked) == 80, f"only {len(clients.acked)} of 80 got a 250"

    def missing() -> set[str]:
        return clients.acked - set(smarthost.handler.subjects())

    wait_for(lambda: not missing(), timeout=45, what="every acknowledged message at the sink")
    assert served.stop() == 0

    by_id = smarthost.handler.message_ids()
    relay_duplicates = sum(count - 1 for count in by_id.values())
    resent = sum(count - 1 for count in smarthost.handler.subjects().values())
    print(
        f"crash test: {kills} kills, {len(clients.acked)} acknowledged, "
        f"{len(smarthost.handler.received)} delivered, {relay_duplicates} delivered twice "
        f"(same Message-ID), {resent - relay_duplicates} sent again by clients that saw "
        f"no 250, {len(clients.refused)} client attempts without a 250"
    )
    assert not missing()


@pytest.mark.postgres
def test_two_relay_processes_on_one_postgresql_deliver_everything_once(
    tmp_path: Path, smarthost: SmarthostServer, processes
):
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set RELAY_TEST_DATABASE_URL=postgresql+psycopg://...")
    from tests.conftest import _empty_postgres

    _empty_postgres(TEST_DATABASE_URL)
    smarthost.start()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path_a = relay_config(tmp_path / "a", TEST_DATABASE_URL, smarthost.port)
    path_b = relay_config(tmp_path / "b", TEST_DATABASE_URL, smarthost.port)
    _, store, info = prepared(path_a)
    store.dispose()
    first = serve(processes, path_a, "a")
    second = serve(processes, path_b, "b")

    clients = [Clients(first.port, info), Clients(second.port, info)]
    threads = [
        each.run(f"{name}{t}", 15, (0.0, 0.05), retry_for=0)
        for each, name in zip(clients, ("a", "b"), strict=True)
        for t in range(2)
    ]
    for thread in threads:
        thread.join(60)
    assert all(not each.refused for each in clients), [each.refused for each in clients]
    acked = clients[0].acked | clients[1].acked
    assert len(acked) == 60
    wait_for(
        lambda: acked <= set(smarthost.handler.subjects()), timeout=30, what="all 60 at the sink"
    )
    wait_for(lambda: len(smarthost.handler.received) >= 62, what="the introductions too")
    assert first.stop() == 0
    assert second.stop() == 0

    assert max(smarthost.handler.message_ids().values()) == 1, "a message was delivered twice"
    assert len(smarthost.handler.received) == 62
    for served in (first, second):
        assert "delivered on attempt" in served.log(), "both processes deliver"


def test_moderator_approves_from_the_cli_while_the_daemon_delivers(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer, processes
):
    smarthost.start()
    path = write_config(
        tmp_path,
        database_url,
        delivery=FAST_DELIVERY,
        smarthost=f'host = "127.0.0.1"\nport = {smarthost.port}\ntimeout = "5s"',
        rules=NO_HOLDS + '\n\n[rules.keywords]\nphrases = ["hold this one"]',
    )
    _, store, info = prepared(path)
    served = serve(processes, path)

    # The phrase in the body makes the keywords rule hold these for a moderator.
    def send_held(n: int) -> None:
        data = mail(info.mentor, info.address, f"hold-{n}", "please hold this one").as_bytes()
        with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
            client.sendmail(info.mentor, [info.address], data)

    for n in range(12):
        send_held(n)
    with store.session() as session:
        held = list(session.scalars(select(Message.id).where(Message.status == MessageStatus.HELD)))
    assert len(held) == 12

    busy = Clients(served.port, info)
    threads = [busy.run(f"busy{t}", 15, (0.0, 0.05), retry_for=0) for t in range(2)]
    outputs = []
    for message_id in held:
        for args in (["approve", str(message_id)], ["queue"]):
            result = CliRunner().invoke(cli, ["--config", str(path), *args])
            outputs.append(result.output)
            assert result.exit_code == 0, result.output
    for thread in threads:
        thread.join(60)
    assert not busy.refused, busy.refused
    expected = {f"hold-{n}" for n in range(12)} | busy.acked
    wait_for(lambda: expected <= set(smarthost.handler.subjects()), timeout=30, what="all mail")
    assert served.stop() == 0
    everything = "\n".join(outputs) + served.log()
    assert "database is locked" not in everything
    assert "Traceback" not in served.log()
    store.dispose()
