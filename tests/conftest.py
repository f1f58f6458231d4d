"""Shared fixtures: a real database, a real SMTP sink, a real relay on loopback.

The database is a SQLite file in the test's temporary folder, or, when
RELAY_TEST_DATABASE_URL is set, that PostgreSQL database, emptied before
each test. The sink is a plain aiosmtpd server that records what it is
given: the relay's smarthost. The relay runs in a thread with its own
event loop, exactly as `relay serve` runs it (service.start/stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from relay import service
from relay.config import Config, load_config
from relay.delivery.notices import Notices
from relay.ops import event_loop
from relay.store import db, registry
from relay.store.models import Role
from tests.dnsserver import LoopbackDns

TEST_DATABASE_URL = os.environ.get("RELAY_TEST_DATABASE_URL", "")
DOMAIN = "relay.test"
POSTMASTER = "operator@ops.example"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, tests about SQLite files and locks are deselected, not skipped:
    every test that runs is required, and CI fails on a skip."""
    if not TEST_DATABASE_URL:
        return
    chosen = [item for item in items if item.get_closest_marker("sqlite") is None]
    if len(chosen) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in chosen])
        items[:] = chosen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- database ---------------------------------------------------------------


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        # A connection an earlier test left open in a transaction (a daemon that did not
        # stop, a proxied socket) would make DROP SCHEMA wait for ever: end them first,
        # and let a lock that is still held fail this test instead of stalling the run.
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND usename = current_user"
                " AND pid <> pg_backend_pid()"
            )
        )
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    if TEST_DATABASE_URL:
        _empty_postgres(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path / 'relay.db'}"


# -- a DNS server on loopback (SPF, DKIM and DMARC records for test domains) ---------


@pytest.fixture
def dns() -> Iterator[LoopbackDns]:
    server = LoopbackDns()
    yield server
    server.stop()


# -- the smarthost sink -------------------------------------------------------


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "451 4.3.0 try later"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 OK"


@dataclass
class Sink:
    port: int
    handler: SinkHandler
    controller: Controller

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        wait_for(lambda: len(self.received) >= count, timeout, f"{count} messages at the sink")
        return self.received

    def to(self, address: str) -> list[Received]:
        return [each for each in self.received if address in each.recipients]


@pytest.fixture
def sink() -> Iterator[Sink]:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield Sink(port, handler, controller)
    controller.stop()


# -- configuration -------------------------------------------------------------


def write_config(folder: Path, database_url: str, extra: str = "", **sections: str) -> Path:
    """A relay.toml in folder; sections override whole [section] bodies."""
    defaults = {
        "relay": f'domain = "{DOMAIN}"\nprogramme_name = "Test Programme"\npostmaster = "{POSTMASTER}"',
        "database": f'url = "{database_url}"',
        "smtp": f'host = "127.0.0.1"\nport = {free_port()}',
        "delivery": 'transport = "maildir"\nmaildir = "outbox"\npoll_interval = "1s"',
        # The relay core's tests are about carrying mail; moderation has its own tests.
        "rules": 'disable = ["new_pair"]',
        # ... and compare bodies exactly: the safeguarding footer has its own tests.
        "safeguarding": 'footer = ""',
    }
    defaults.update(sections)
    body = "\n\n".join(f"[{name}]\n{content}" for name, content in defaults.items())
    path = folder / "relay.toml"
    path.write_text(body + "\n" + extra)
    return path


@pytest.fixture
def config_path(tmp_path: Path, database_url: str, sink: Sink) -> Path:
    """A relay that forwards to the sink smarthost."""
    return write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "1s"\nretry_first = "1s"\nretry_max = "2s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
    )


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def store(config: Config) -> Iterator[db.Store]:
    opened = db.Store(config.database.url)
    db.upgrade(opened)
    yield opened
    opened.dispose()


# -- a whole module's relay ------------------------------------------------------

# Rules that would hold ordinary mail (contact details, links, attachments, a new
# pair, many messages an hour): corpus suites are about what gets through, not rules.
NOT_HOLDING = ("attachments", "contact", "keywords", "links", "new_pair", "rate")


@dataclass
class Environment:
    """A database, a config and a sink smarthost, shared by a module's tests."""

    sink: Sink
    config_path: Path
    config: Config
    store: db.Store


@contextlib.contextmanager
def forwarding_environment(folder: Path) -> Iterator[Environment]:
    """Everything but the relay itself, which the module starts once it has its participants."""
    if TEST_DATABASE_URL:
        _empty_postgres(TEST_DATABASE_URL)
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite:///{folder / 'relay.db'}"
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    disabled = ", ".join(f'"{name}"' for name in NOT_HOLDING)
    config_path = write_config(
        folder,
        url,
        delivery='transport = "smtp"\npoll_interval = "1s"\nretry_first = "1s"\nretry_max = "2s"',
        smarthost=f'host = "127.0.0.1"\nport = {controller.port}\ntimeout = "5s"',
        rules=f"disable = [{disabled}]",
    )
    config = load_config(config_path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    try:
        yield Environment(Sink(controller.port, handler, controller), config_path, config, store)
    finally:
        store.dispose()
        controller.stop()


# -- participants and pairs ---------------------------------------------------


@dataclass(frozen=True)
class PairInfo:
    address: str
    mentor: str
    mentee: str


MENTOR = ("ana.real@mentors.example.org", "Ana Mentor")
MENTEE = ("ben.real@school.example.net", "Ben Mentee")


def make_pair(
    store: db.Store,
    config: Config,
    mentor: tuple[str, str] = MENTOR,
    mentee: tuple[str, str] = MENTEE,
) -> PairInfo:
    with store.session() as session:
        registry.add_participant(session, mentor[0], mentor[1], Role.MENTOR)
        registry.add_participant(session, mentee[0], mentee[1], Role.MENTEE)
        created = registry.create_pair(
            session, Notices(config), config.relay.domain, mentor[0], mentee[0]
        )
    return PairInfo(created.address, mentor[0], mentee[0])


@pytest.fixture
def pair(store: db.Store, config: Config) -> PairInfo:
    return make_pair(store, config)


# -- the running relay ----------------------------------------------------------


class RunningRelay:
    """`relay serve`'s parts, run in a thread with their own event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = event_loop.loop_factory(config.daemon.event_loop)()  # as `relay serve`'s
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: service.Running = self._call(service.start(config))

    def _call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def port(self) -> int:
        assert self.running.smtp is not None
        return self.running.smtp.port

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=10)

    def send(self, message: EmailMessage | bytes, envelope_from: str, to: str) -> None:
        with self.smtp() as client:
            data = message if isinstance(message, bytes) else wire(message)
            client.sendmail(envelope_from, [to], data)

    def stop(self) -> None:
        self._call(service.stop(self.running, grace_seconds=5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def relay(config: Config, store: db.Store) -> Iterator[RunningRelay]:
    running = RunningRelay(config)
    yield running
    running.stop()


@pytest.fixture
def configured(tmp_path: Path, database_url: str, sink: Sink):
    """Start relays with extra settings: configured(section=body, ...) -> (relay, pair, store).

    By default the relay forwards to the sink smarthost; a section given replaces
    the default one whole.
    """
    started: list[tuple[RunningRelay, db.Store]] = []

    def start(**sections: str) -> tuple[RunningRelay, PairInfo, db.Store]:
        base = {
            "delivery": 'transport = "smtp"\npoll_interval = "1s"',
            "smarthost": f'host = "127.0.0.1"\nport = {sink.port}',
        }
        config = load_config(write_config(tmp_path, database_url, **(base | sections)))
        store = db.Store(config.database.url)
        db.upgrade(store)
        info = make_pair(store, config)
        running = RunningRelay(config)
        started.append((running, store))
        return running, info, store

    yield start
    for running, store in started:
        running.stop()
        store.dispose()


def wire(message: EmailMessage) -> bytes:
    """The message as an SMTP client sends it: CRLF line endings."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def mail(
    sender: str,
    to: str,
    subject: str = "Hello",
    body: str = "How is school going?",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message
