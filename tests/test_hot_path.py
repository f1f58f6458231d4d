"""The fast path's promises (issue 14): group commit, the pair directory cache,
idempotent Maildir delivery, taking back dead local leases, waking the daemon.

Nothing here is timed: speed lives in bench/throughput.py. Where a wait has a
bound (the approval test), it is a hang guard far below the poll interval the
test sets, so passing proves the wake-up, not a speed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.delivery.claims import process_start
from relay.delivery.notices import Notices
from relay.delivery.transports import MaildirTransport, make_transport
from relay.delivery.worker import DeliveryWorker
from relay.store import db, registry
from relay.store.models import Message, OutboxEntry, ParticipantAddress
from relay.store.states import DeliveryStatus, MessageStatus, utcnow
from tests.conftest import (
    DOMAIN,
    PairInfo,
    RunningRelay,
    free_port,
    mail,
    wait_for,
    wire,
    write_config,
)
from tests.test_durability import (
    FAST_DELIVERY,
    SmarthostServer,
    prepared,
    relay_config,
    serve,
)
from tests.test_durability import processes as processes  # a fixture
from tests.test_durability import smarthost as smarthost  # a fixture

# -- group commit ----------------------------------------------------------------


def test_kill_9_during_group_commits_loses_nothing_that_got_a_250(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer, processes
):
    """Sixteen sessions at full speed (so messages share commits); kill -9 at random
    moments, which lands between a batch and its commit as often as anywhere else.
    Every message that got a 250 must be stored."""
    smarthost.start()
    path = relay_config(tmp_path, database_url, smarthost.port, FAST_DELIVERY)
    _, store, info = prepared(path)
    served = serve(processes, path)
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        sent = 0
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as session:
                    while not stop.is_set():
                        subject = f"c{number}-{sent}"
                        sent += 1
                        data = wire(mail(info.mentor, info.address, subject))
                        session.sendmail(info.mentor, [info.address], data)
                        with lock:  # only after the 250
                            acked.add(subject)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # the relay died under us: what had no 250 is not ours

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(16)]
    for thread in threads:
        thread.start()
    rng = random.Random()
    try:
        for _ in range(3):
            # Kill only once the load is flowing (some messages acknowledged since the
            # last start), at a random moment: mid-batch as often as anywhere else.
            wanted = len(acked) + 10
            wait_for(lambda w=wanted: len(acked) >= w, timeout=120, what="the load to flow")
            time.sleep(rng.uniform(0.0, 0.5))
            served.kill()
            served.start()
        wanted = len(acked) + 10
        wait_for(lambda w=wanted: len(acked) >= w, timeout=120, what="the load after restart")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    with store.session() as session:
        stored = set(session.scalars(select(Message.subject)))
    assert acked - stored == set()
    served.stop()
    store.dispose()


def _threads_in_intake() -> list[str]:
    """Names of the threads whose stack is inside relay/intake.py right now."""
    intake_file = str(Path(sys.modules["relay.intake"].__file__ or "").resolve())
    busy = []
    for thread_id, frame in sys._current_frames().items():
        walking = frame
        while walking is not None:
            if str(Path(walking.f_code.co_filename).resolve()) == intake_file:
                busy.append(str(thread_id))
                break
            walking = walking.f_back
    return busy


@pytest.mark.sqlite
def test_sessions_waiting_for_their_commit_hold_no_thread(configured, sink):
    """Eight sessions' messages (under the default 10 per address) wait for a commit another writer blocks: each session
    waits on the event loop, not in a worker thread, and all get their 250 after."""
    from tests.test_stalls import sqlite_write_lock

    relay, pair, store = configured()
    sessions = 8
    handler = relay.running.smtp.handler
    replies: list[int] = []

    def send(number: int) -> None:
        data = wire(mail(pair.mentee, pair.address, f"waiting {number}"))
        with relay.smtp() as client:
            client.sendmail(pair.mentee, [pair.address], data)
            replies.append(250)

    # A first message loads what intake keeps for good (the bounce secret takes a write).
    relay.send(mail(pair.mentee, pair.address, "first"), pair.mentee, pair.address)
    with sqlite_write_lock(store.url):
        senders = [threading.Thread(target=send, args=(n,), daemon=True) for n in range(sessions)]
        for sender in senders:
            sender.start()
        # Decided (no thread left in intake) and all still waiting for the commit.
        wait_for(
            lambda: handler.data_in_progress == sessions and not _threads_in_intake(),
            timeout=20,
            what="the messages waiting for their commit, no thread in intake",
        )
        assert replies == []  # nobody answered before the commit
    for sender in senders:
        sender.join(30)
    assert replies == [250] * sessions
    with store.session() as session:
        subjects = set(session.scalars(select(Message.subject)))
    assert {f"waiting {n}" for n in range(sessions)} <= subjects


def test_group_writer_shares_commits_and_one_bad_piece_fails_alone(store: db.Store):
    from sqlalchemy import Connection, insert

    from relay.store.group_commit import GroupWriter
    from relay.store.models import RelaySecret

    writer = GroupWriter(store)
    commit_started = threading.Event()

    def slow_first(connection: Connection, name: str) -> str:
        commit_started.set()
        time.sleep(0.3)  # while this batch commits, the others queue up behind it
        connection.execute(insert(RelaySecret).values(name=name, value="1"))
        return name

    def row(n: int, bad: int | None, prefix: str):
        def work(connection: Connection) -> int:
            if n == bad:
                raise ValueError("a bad message")
            connection.execute(insert(RelaySecret).values(name=f"{prefix}{n}", value=str(n)))
            return n

        return work

    def round_behind_a_slow_commit(name: str, bad: int | None) -> list[object]:
        commit_started.clear()
        first = writer.submit(functools.partial(slow_first, name=name))
        assert commit_started.wait(10)
        futures = [writer.submit(row(n, bad, name)) for n in range(20)]
        assert first.result(30) == name
        return [future.exception(30) or future.result() for future in futures]

    assert round_behind_a_slow_commit("good", bad=None) == list(range(20))
    # Twenty pieces arrived while one commit ran: far fewer commits than pieces.
    assert writer.batches <= 3 and writer.items == 21
    results = round_behind_a_slow_commit("mixed", bad=7)
    writer.close()
    assert isinstance(results[7], ValueError)
    assert [r for n, r in enumerate(results) if n != 7] == [n for n in range(20) if n != 7]
    with store.session() as session:
        names = set(session.scalars(select(RelaySecret.name)))
    assert {f"mixed{n}" for n in range(20) if n != 7} <= names
    assert "mixed7" not in names
    with pytest.raises(RuntimeError):
        writer.submit(row(1, None, "late"))


def test_rows_handed_to_later_share_one_statement_and_a_bad_row_fails_its_piece_alone(
    store: db.Store,
):
    from sqlalchemy import Connection, event, insert

    from relay.store.group_commit import GroupWriter, later
    from relay.store.models import RelaySecret

    writer = GroupWriter(store)
    started, release = threading.Event(), threading.Event()
    statements: list[tuple[str, bool]] = []
    insert_secret = insert(RelaySecret)  # one statement object, as the hot path's are

    def count(_conn, _cursor, statement, _params, _context, executemany) -> None:
        if statement.startswith("INSERT INTO relay_secrets"):
            statements.append((statement, executemany))

    def hold(connection: Connection) -> None:
        started.set()
        assert release.wait(10)  # the pieces below queue up behind this commit

    def row(name: str):
        def work(connection: Connection) -> str:
            later(connection, insert_secret, {"name": name, "value": "1"})
            return name  # told only after the commit that wrote the row

        return work

    writer.submit(hold)
    assert started.wait(10)
    event.listen(store.engine, "before_cursor_execute", count)
    futures = [writer.submit(row(f"later{n}")) for n in range(10)]
    release.set()
    assert [future.result(30) for future in futures] == [f"later{n}" for n in range(10)]
    assert len(statements) == 1 and statements[0][1]  # ten rows, one executemany
    # A row that breaks a constraint at the batch's end fails only the piece that gave it.
    started.clear()
    release.clear()
    writer.submit(hold)
    assert started.wait(10)
    names = ["fresh0", "later3", "fresh1"]  # later3 exists: the unique name is violated
    futures = [writer.submit(row(name)) for name in names]
    release.set()
    outcomes = [future.exception(30) or future.result() for future in futures]
    writer.close()
    event.remove(store.engine, "before_cursor_execute", count)
    assert outcomes[0] == "fresh0" and outcomes[2] == "fresh1"
    assert isinstance(outcomes[1], Exception)
    with store.session() as session:
        stored = set(session.scalars(select(RelaySecret.name)))
    assert {"fresh0", "fresh1", *(f"later{n}" for n in range(10))} <= stored


# -- the pair directory cache ------------------------------------------------------


def _answer(relay: RunningRelay, sender: str, to: str, subject: str) -> int:
    with relay.smtp() as client:
        client.ehlo()
        client.mail(sender)
        code, _ = client.rcpt(to)
        if code != 250:
            return code
        code, _ = client.data(wire(mail(sender, to, subject)))
        return code


def test_a_pair_ended_is_seen_by_the_next_message(
    relay: RunningRelay, pair: PairInfo, store: db.Store
):
    assert _answer(relay, pair.mentor, pair.address, "before") == 250  # cached now
    with store.session() as session:
        registry.end_pair(session, pair.address, DOMAIN)
    assert _answer(relay, pair.mentor, pair.address, "after") == 550
    with store.session() as session:
        subjects = list(session.scalars(select(Message.subject)))
    assert subjects == ["before"]


def test_an_address_added_to_a_participant_is_seen_by_the_next_message(
    relay: RunningRelay, pair: PairInfo, store: db.Store, sink
):
    other = "ana.phone@mobile.example.com"
    assert _answer(relay, other, pair.address, "stranger") == 550  # not hers yet
    with store.session() as session:
        ana = registry.find_participant(session, pair.mentor)
        session.add(ParticipantAddress(participant_id=ana.id, email=other))
    assert _answer(relay, other, pair.address, "from her phone") == 250
    (forwarded,) = wait_for(lambda: _with_subject(sink, pair.mentee, "from her phone"))
    # Her new address is one of the hidden ones from now on, too.
    assert other.encode() not in forwarded.data


def _with_subject(sink, address: str, subject: str) -> list:
    return [each for each in sink.to(address) if each.message["Subject"] == subject]


# -- idempotent Maildir --------------------------------------------------------------


def test_maildir_delivery_of_the_same_outbox_row_twice_leaves_one_copy(tmp_path: Path):
    transport = MaildirTransport(tmp_path / "mail", DOMAIN)
    content = wire(mail("a@x.example", "b@y.example", "once"))

    async def deliver_twice() -> None:
        await transport.send("bounce@relay.test", "b@y.example", content, key="outbox-7")
        await transport.send("bounce@relay.test", "b@y.example", content, key="outbox-7")

    asyncio.run(deliver_twice())
    box = transport.folder_for("b@y.example")
    assert len(list((box / "new").iterdir())) == 1
    # The participant's client reads it: moved to cur/ with flags. A retry still finds it.
    (only,) = (box / "new").iterdir()
    only.rename(box / "cur" / f"{only.name}:2,S")
    asyncio.run(deliver_twice())
    assert list((box / "new").iterdir()) == []
    assert len(list((box / "cur").iterdir())) == 1
    assert list((box / "tmp").iterdir()) == []
    # Another row is another mail.
    asyncio.run(transport.send("bounce@relay.test", "b@y.example", content, key="outbox-8"))
    assert len(list((box / "new").iterdir())) == 1


# -- taking back leases ------------------------------------------------------------------


def _dead_pid() -> tuple[int, int]:
    """The pid and start time of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(process.pid)
    process.wait()
    assert start is not None
    return process.pid, start


def test_leases_are_taken_back_only_from_dead_processes_on_this_host(
    tmp_path: Path, database_url: str
):
    config, store, _ = prepared(relay_config(tmp_path, database_url, free_port()))
    host = socket.gethostname()
    dead_pid, dead_start = _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive_start = process_start(alive.pid)
        claims = [
            f"{host}:{dead_pid}:{dead_start}:aaaaaa",  # died: take back
            f"{host}:{alive.pid}:{alive_start}:bbbbbb",  # alive: honour
            f"{host}:{alive.pid}:{(alive_start or 0) + 1}:cccccc",  # pid reused: take back
            f"elsewhere.example:{dead_pid}:{dead_start}:dddddd",  # another host: honour
        ]
        with store.session() as session:
            rows = list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))
            for n, claim in enumerate(claims):
                row = rows[n] if n < len(rows) else OutboxEntry(**_copy(rows[0]))
                if n >= len(rows):
                    session.add(row)
                row.status = DeliveryStatus.SENDING
                row.claimed_by = claim
                row.lease_until = utcnow() + timedelta(minutes=5)
                row.attempts = 1
        worker = DeliveryWorker(store, config, make_transport(config), Notices(config))
        assert worker.take_back_dead_claims() == 2
        now = utcnow()
        with store.session() as session:
            leases = {
                row.claimed_by: row.lease_until < now
                for row in session.scalars(select(OutboxEntry))
            }
        assert leases == {claims[0]: True, claims[1]: False, claims[2]: True, claims[3]: False}
    finally:
        alive.kill()
        alive.wait()
        store.dispose()


def _copy(row: OutboxEntry) -> dict[str, object]:
    return {"kind": row.kind, "recipient": row.recipient, "content": row.content}


def test_a_restarted_daemon_delivers_what_its_killed_predecessor_had_claimed(
    tmp_path: Path, database_url: str, smarthost: SmarthostServer, processes
):
    """The predecessor claimed mail (lease 5 minutes) and was killed mid-send; the new
    daemon must not wait for the lease."""
    smarthost.handler.delay = 30.0  # every send hangs: the claim is held when we kill
    smarthost.start()
    delivery = FAST_DELIVERY + '\nlease = "5m"'
    path = relay_config(tmp_path, database_url, smarthost.port, delivery)
    _, store, _ = prepared(path)
    served = serve(processes, path)

    def sending() -> bool:
        with store.session() as session:
            statuses = list(session.scalars(select(OutboxEntry.status)))
        return DeliveryStatus.SENDING in statuses

    wait_for(sending, what="the introductions to be claimed")
    served.kill()
    smarthost.handler.delay = 0.0
    served.start()
    wait_for(
        lambda: all(row.status is DeliveryStatus.DELIVERED for row in _rows(store)),
        timeout=60,  # hang guard; the lease alone would hold them for 5 minutes
        what="the killed daemon's claims delivered by its successor",
    )
    assert "took back" in served.log()
    served.stop()
    store.dispose()


def _rows(store: db.Store) -> list[OutboxEntry]:
    with store.session() as session:
        return list(session.scalars(select(OutboxEntry)))


# -- wake-up ----------------------------------------------------------------------------


@pytest.fixture
def slow_poll_config(tmp_path: Path, database_url: str, sink):
    return write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "60s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        rules='disable = ["new_pair"]\n\n[rules.keywords]\nphrases = ["hold this one"]',
    )


def test_approve_wakes_the_running_daemon_instead_of_waiting_for_the_poll(
    slow_poll_config: Path, sink
):
    from relay.config import load_config
    from tests.conftest import make_pair

    config = load_config(slow_poll_config)
    store = db.Store(config.database.url)
    db.upgrade(store)
    info = make_pair(store, config)
    relay = RunningRelay(config)
    try:
        wait_for(lambda: len(sink.handler.received) >= 2, what="the introductions")
        relay.send(
            mail(info.mentor, info.address, "held one", "please hold this one"),
            info.mentor,
            info.address,
        )
        with store.session() as session:
            (held,) = session.scalars(
                select(Message.id).where(Message.status == MessageStatus.HELD)
            )
        result = CliRunner().invoke(cli, ["-c", str(slow_poll_config), "approve", str(held)])
        assert result.exit_code == 0, result.output
        # 60 s between polls: only the wake-up delivers this within the guard.
        wait_for(
            lambda: _with_subject(sink, info.mentee, "held one"),
            timeout=20,
            what="the approved message",
        )
    finally:
        relay.stop()
        store.dispose()


def test_a_wake_up_without_a_daemon_is_harmless(tmp_path: Path):
    from relay.ops.wakeup import wake_daemon

    assert wake_daemon(tmp_path / "relay.pid") is False
    assert not (tmp_path / "relay.wake").exists()
    assert os.listdir(tmp_path) == []
