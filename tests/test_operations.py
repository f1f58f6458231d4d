"""Operating the daemon: systemd notifications, reload, status, metrics, purge, logs."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from relay.cli import cli
from relay.config import load_config
from relay.store import db
from relay.store.models import (
    Message,
    MessageStatus,
    ModerationAction,
    OutboxEntry,
    Pair,
    PairStatus,
    utcnow,
)
from tests.conftest import MENTEE, MENTOR, free_port, mail, make_pair, wait_for, wire, write_config


class Daemon:
    """`relay serve` as a subprocess, with a NOTIFY_SOCKET the test listens on."""

    def __init__(self, folder: Path, config_path: Path, *serve_args: str) -> None:
        self.config_path = config_path
        self.notify_path = folder / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(20)
        self.log_path = folder / "serve.log"
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path))
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "-c", str(config_path), "serve", *serve_args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.config = load_config(config_path)

    def expect(self, field: str) -> list[str]:
        """Notification datagrams up to and including one with this field."""
        seen: list[str] = []
        while True:
            datagram = self.notify.recv(4096).decode()
            seen.append(datagram)
            if field in datagram.split("\n"):
                return seen

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.config.smtp.port, timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self.notify.close()
        self.log.close()
        return code

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(params=["uvloop", "asyncio"])
def daemon_config(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Path:
    """Each daemon test on both event loops ([daemon] event_loop): the default and the way back."""
    return write_config(
        tmp_path,
        database_url,
        rules='disable = ["new_pair"]\n[rules.keywords]\nphrases = ["secret plan"]',
        daemon=f'pid_file = "relay.pid"\nstale_after = "1h"\nevent_loop = "{request.param}"',
        metrics=f'enabled = true\nhost = "127.0.0.1"\nport = {free_port()}',
    )


@pytest.fixture
def daemon(tmp_path: Path, daemon_config: Path) -> Iterator[Daemon]:
    config = load_config(daemon_config)
    store = db.Store(config.database.url)
    db.upgrade(store)
    make_pair(store, config)
    store.dispose()
    running = Daemon(tmp_path, daemon_config)
    running.expect("READY=1")
    yield running
    running.stop()


def pair_address(daemon: Daemon) -> str:
    config = daemon.config
    store = db.Store(config.database.url)
    try:
        with store.session() as session:
            return f"{session.scalars(select(Pair)).one().token}@{config.relay.domain}"
    finally:
        store.dispose()


def statuses(daemon: Daemon) -> list[MessageStatus]:
    store = db.Store(daemon.config.database.url)
    try:
        with store.session() as session:
            return [m.status for m in session.scalars(select(Message).order_by(Message.id))]
    finally:
        store.dispose()


def test_systemd_is_told_ready_and_stopping(daemon: Daemon):
    daemon.process.send_signal(signal.SIGTERM)
    assert "STOPPING=1" in "\n".join(daemon.expect("STOPPING=1"))
    assert daemon.process.wait(30) == 0


def test_serve_runs_on_the_configured_event_loop_and_relays(daemon: Daemon):
    kind = daemon.config.daemon.event_loop
    wait_for(lambda: f"is running on {kind}" in daemon.output, what="the start-up line")
    address = pair_address(daemon)
    with daemon.smtp() as session:
        session.sendmail(
            MENTOR[0], [address], wire(mail(MENTOR[0], address, "loops", "Both carry mail"))
        )
    inbox = daemon.config_path.parent / "outbox" / MENTEE[0] / "new"

    def relayed() -> bool:
        return any("Both carry mail" in copy.read_text() for copy in inbox.glob("*"))

    wait_for(relayed, what="the mentee's copy")


def test_sighup_reloads_keywords_and_keeps_sessions(daemon: Daemon):
    address = pair_address(daemon)
    with daemon.smtp() as session:  # opened before the reload, used after it
        session.ehlo()
        text = daemon.config_path.read_text().replace('"secret plan"', '"secret plan", "pineapple"')
        daemon.config_path.write_text(text)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.expect("READY=1")
        session.sendmail(
            MENTOR[0], [address], wire(mail(MENTOR[0], address, "fruit", "I like pineapple"))
        )
    assert statuses(daemon) == [MessageStatus.HELD]
    assert "reloaded" in daemon.output


def test_broken_reload_keeps_the_old_rules(daemon: Daemon):
    address = pair_address(daemon)
    good = daemon.config_path.read_text()
    daemon.config_path.write_text(good + '\n[rules.actions]\nkeywords = "explode"\n')
    daemon.process.send_signal(signal.SIGHUP)
    daemon.expect("READY=1")
    with daemon.smtp() as client:
        client.sendmail(
            MENTOR[0], [address], wire(mail(MENTOR[0], address, "x", "our secret plan"))
        )
    assert statuses(daemon) == [MessageStatus.HELD]
    assert "reload failed" in daemon.output and "explode" in daemon.output


def test_status_exit_codes(daemon: Daemon):
    def status() -> tuple[int, dict]:
        result = CliRunner().invoke(cli, ["-c", str(daemon.config_path), "status", "--json"])
        return result.exit_code, json.loads(result.output)

    code, report = status()
    assert code == 0 and report["running"] and report["pid"] == daemon.process.pid
    # A forward that has waited two hours: the queue is stale.
    store = db.Store(daemon.config.database.url)
    try:
        with store.session() as session:
            session.execute(
                update(OutboxEntry).values(
                    status="deferred",
                    created_at=utcnow() - timedelta(hours=2),
                    next_attempt_at=utcnow() + timedelta(hours=1),
                )
            )
    finally:
        store.dispose()
    code, report = status()
    assert code == 1 and any("waited" in problem for problem in report["problems"])
    daemon.stop()
    code, report = status()
    assert code == 1 and not report["running"]


def test_metrics_count_relayed_and_held(daemon: Daemon):
    address = pair_address(daemon)
    with daemon.smtp() as client:
        client.sendmail(
            MENTOR[0], [address], wire(mail(MENTOR[0], address, "ok", "See you at 4pm"))
        )
        client.sendmail(
            MENTOR[0], [address], wire(mail(MENTOR[0], address, "no", "our secret plan"))
        )
    url = f"http://127.0.0.1:{daemon.config.metrics.port}/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def delivered() -> str | None:
        text = scrape()
        return text if 'relay_delivery_attempts_total{outcome="delivered"}' in text else None

    text = wait_for(delivered)
    assert 'relay_messages_received_total{decision="forwarded"} 1.0' in text
    assert 'relay_messages_received_total{decision="hold"} 1.0' in text
    assert 'relay_rule_hits_total{rule="keywords"} 1.0' in text
    assert "relay_data_reply_seconds_count 2.0" in text
    assert 'relay_outbox_messages{state="delivered"}' in text


def test_no_real_address_in_logs_at_info(daemon: Daemon):
    address = pair_address(daemon)
    with daemon.smtp() as client:
        client.sendmail(MENTOR[0], [address], wire(mail(MENTOR[0], address, "hello", "hi")))
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail(
                "evil@elsewhere.example", [address], wire(mail("evil@elsewhere.example", address))
            )
    time.sleep(1.5)  # let the delivery worker log its line too
    daemon.stop()
    log = daemon.output
    assert "alembic" not in log  # no "Context impl SQLiteImpl." at every start
    decided = [line for line in log.splitlines() if "relay.intake: decided" in line]
    assert len(decided) == 1, log
    assert decided[0].count("message=1") == 1 and decided[0].count("accept") == 1
    for secret in (MENTOR[0], MENTEE[0], "evil@elsewhere.example"):
        assert secret not in log


def test_purge_removes_old_ended_pairs_bodies_only(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    try:
        old = make_pair(store, config)
        young = make_pair(
            store, config, ("carla@mentors.example.org", "Carla"), ("dev@school.example.net", "Dev")
        )
        from relay.intake import Incoming, Intake

        intake = Intake(store, config)
        for info in (old, young):
            raw = wire(mail(info.mentor, info.address, "Private matters", "my diary"))
            assert (
                intake.accept(Incoming(raw, info.mentor, [info.address], "smtp")).reply.code == 250
            )
        with store.session() as session:
            for pair in session.scalars(select(Pair)):
                pair.status = PairStatus.ENDED
                days = 400 if f"{pair.token}@relay.test" == old.address else 30
                pair.ended_at = utcnow() - timedelta(days=days)
            session.add(
                ModerationAction(message_id=1, moderator="carol", verdict="approve", reason="")
            )

        def run(*args: str):
            return CliRunner().invoke(cli, ["-c", str(path), "purge", *args])

        dry = run("--older-than", "365d", "--dry-run")
        assert dry.exit_code == 0 and "would purge 1 message (" in dry.output
        assert "bytes) of 1 pair that ended" in dry.output
        with store.session() as session:
            assert all(m.raw for m in session.scalars(select(Message)))
        done = run("--older-than", "365d")
        assert done.exit_code == 0 and "purged 1 message (" in done.output
        with store.session() as session:
            first, second = session.scalars(select(Message).order_by(Message.id)).all()
            assert first.raw == b"" and first.subject == "[purged]" and first.purged_at is not None
            assert b"my diary" in second.raw
            outbox = session.scalars(
                select(OutboxEntry).where(OutboxEntry.message_id == first.id)
            ).all()
            assert outbox and all(row.content == b"" for row in outbox)
            assert session.scalars(select(ModerationAction)).one().moderator == "carol"
        assert run("--older-than", "soon").exit_code == 2
    finally:
        store.dispose()


def test_json_log_lines_carry_the_decision(tmp_path: Path, daemon_config: Path):
    config = load_config(daemon_config)
    store = db.Store(config.database.url)
    db.upgrade(store)
    info = make_pair(store, config)
    store.dispose()
    running = Daemon(tmp_path, daemon_config, "--log-format", "json")
    try:
        running.expect("READY=1")
        with running.smtp() as client:
            client.sendmail(
                info.mentor,
                [info.address],
                wire(mail(info.mentor, info.address, "hi", "our secret plan")),
            )
    finally:
        assert running.stop() == 0
    entries = [json.loads(line) for line in running.output.splitlines() if line.startswith("{")]
    decisions = [entry for entry in entries if entry.get("decision")]
    assert decisions, running.output
    held = decisions[0]
    assert held["decision"] == "hold" and held["rules"] == ["keywords"]
    assert held["sender_role"] == "mentor" and held["smtp"] == "250 2.0.0"
    assert held["pair"] == info.address.split("@")[0]
    assert info.mentor not in running.output
