"""One client must not stall the daemon: header floods, connection floods, idle and
endless sessions, a locked or frozen database, and a stop with an intake stuck.

Every test performs the attack against the relay on loopback (in a thread, or as
`relay serve` where signals matter) with small limits and timeouts from relay.toml.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay.config import Config, load_config
from relay.store import db
from relay.store.models import Message
from tests.conftest import (
    DOMAIN,
    POSTMASTER,
    TEST_DATABASE_URL,
    PairInfo,
    Sink,
    mail,
    make_pair,
    wait_for,
    wire,
    write_config,
)
from tests.test_operations import Daemon


def _smtp_section(port: int, **settings: str) -> str:
    lines = ['host = "127.0.0.1"', f"port = {port}"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stored(store: db.Store) -> int:
    with store.read_session() as session:
        return int(session.scalar(select(func.count(Message.id))) or 0)


class Line:
    """A raw SMTP connection, for what smtplib will not do (dribble, stall, flood)."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=20, source_address=(source, 0)
        )
        self.buffer = b""

    def reply(self) -> str:
        """The next whole reply (the last line of a multi-line one); '' when the server closed."""
        while True:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                if line[3:4] != b"-":
                    return line.decode()
            chunk = self.sock.recv(4096)
            if not chunk:
                return ""
            self.buffer += chunk

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def closed_by_server(self) -> bool:
        try:
            self.sock.sendall(b"NOOP\r\n")
        except OSError:
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# -- headers -------------------------------------------------------------------


def _with_headers(pair: PairInfo, count: int, size: int = 12) -> bytes:
    head = wire(mail(pair.mentee, pair.address, body="hello"))
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"v" * size) for n in range(count))
    return filler + head


def test_a_flood_of_headers_is_refused_with_552(configured, sink: Sink):
    relay, pair, store = configured()
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentee, [pair.address], _with_headers(pair, 10_000))
    assert refused.value.smtp_code == 552
    assert refused.value.smtp_error.startswith(b"5.3.4")
    assert _stored(store) == 0


def test_a_header_section_over_the_byte_limit_is_refused(configured, sink: Sink):
    relay, pair, _ = configured(
        relay=f'domain = "{DOMAIN}"\nmax_header_size = 20000\npostmaster = "{POSTMASTER}"'
    )
    # Few fields, but one folded over 30 KB: the byte limit, not the count, refuses it.
    folded = b"X-Long: " + b"\r\n ".join([b"w" * 70] * 450) + b"\r\n"
    message = folded + wire(mail(pair.mentee, pair.address))
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentee, [pair.address], message)
    assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (552, b"5.3.4")


def test_many_headers_under_the_limit_are_relayed_without_them(configured, sink: Sink):
    relay, pair, _ = configured()
    relay.send(_with_headers(pair, 990), pair.mentee, pair.address)
    delivered = sink.wait_for(1)[0]
    assert delivered.recipients == [pair.mentor]
    assert b"X-Filler" not in delivered.data


# -- connections and timeouts -----------------------------------------------------


def test_connections_over_the_limits_get_421_and_are_closed(configured, sink: Sink):
    port = _free_port()
    configured(smtp=_smtp_section(port, max_connections="3", max_connections_per_ip="2"))
    opened = [Line(port), Line(port)]
    try:
        assert all(line.reply().startswith("220") for line in opened)
        third = Line(port)  # a third from the same address
        assert third.reply().startswith("421 4.7.0")
        assert third.reply() == ""
        opened.append(Line(port, source="127.0.0.2"))
        assert opened[-1].reply().startswith("220")
        over = Line(port, source="127.0.0.3")  # the fourth session overall
        assert over.reply().startswith("421 4.7.0")
        opened.pop(0).close()  # once one leaves, the next one is served

        def greeted() -> bool:
            line = Line(port, source="127.0.0.3")
            opened.append(line)
            return line.reply().startswith("220")

        wait_for(greeted, what="a greeting after a session left")
    finally:
        for line in opened:
            line.close()


def _keeps_talking(line: Line, command: str, seconds: float = 15.0) -> str:
    """Send command every 0.2 s until the server closes; the last reply seen."""
    last = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line.send(command)
            last = line.reply() or last
        except OSError:
            return last
        if last.startswith("421"):
            return last
        time.sleep(0.2)
    return last


@pytest.mark.parametrize("command", ["NOOP", "RSET"])
def test_noop_and_rset_do_not_keep_a_session_open(configured, sink: Sink, command: str):
    port = _free_port()
    configured(smtp=_smtp_section(port, command_timeout='"1s"'))
    line = Line(port)
    try:
        assert line.reply().startswith("220")
        line.send("EHLO attacker.example")
        assert line.reply().startswith("250")
        assert _keeps_talking(line, command).startswith("421 4.4.2")
    finally:
        line.close()


def test_a_data_that_never_ends_is_cut_off(configured, sink: Sink):
    port = _free_port()
    _, pair, store = configured(
        smtp=_smtp_section(port, command_timeout='"30s"', data_timeout='"1s"')
    )
    line = Line(port)
    try:
        assert line.reply().startswith("220")
        for command, code in (
            ("EHLO attacker.example", "250"),
            (f"MAIL FROM:<{pair.mentee}>", "250"),
            (f"RCPT TO:<{pair.address}>", "250"),
            ("DATA", "354"),
        ):
            line.send(command)
            assert line.reply().startswith(code)
        closed = False
        for _ in range(75):  # a line every 0.2 s, for up to 15 s
            try:
                line.send("more text that never ends")
            except OSError:
                closed = True
                break
            time.sleep(0.2)
        assert closed or line.reply().startswith("421 4.4.2")
    finally:
        line.close()
    assert _stored(store) == 0


def test_a_slow_data_within_the_data_timeout_is_taken(configured, sink: Sink):
    port = _free_port()
    _, pair, _ = configured(smtp=_smtp_section(port, command_timeout='"1s"', data_timeout='"30s"'))
    line = Line(port)
    try:
        assert line.reply().startswith("220")
        envelope = (f"MAIL FROM:<{pair.mentee}>", f"RCPT TO:<{pair.address}>", "DATA")
        for command in ("EHLO slow.example", *envelope):
            line.send(command)
            assert line.reply()[:1] in "23"
        for text in wire(mail(pair.mentee, pair.address)).decode().split("\r\n"):
            line.send(text)
            time.sleep(0.1)  # 2 s in all: more than the command timeout
        line.send(".")
        assert line.reply().startswith("250")
    finally:
        line.close()


# -- the database -------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_write_lock(url: str) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding the database (as `relay purge` might, or a stuck one)."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@pytest.mark.sqlite
def test_a_locked_database_answers_451_and_stores_nothing_twice(configured, sink: Sink):
    relay, pair, store = configured(
        smtp=_smtp_section(_free_port(), intake_timeout='"1s"'),
    )
    message = wire(mail(pair.mentee, pair.address))
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pair.mentee)
        client.rcpt(pair.address)
        with sqlite_write_lock(store.url):
            code, text = client.data(message)
    assert (code, text[:5]) == (451, b"4.3.0")
    # The abandoned intake now gets the lock, and must not store what the client will resend.
    time.sleep(1.0)
    relay.send(message, pair.mentee, pair.address)

    def forwarded() -> list[bytes]:
        return [each.data for each in sink.to(pair.mentor) if b"How is school going?" in each.data]

    wait_for(forwarded, what="the forward")
    time.sleep(1.0)
    assert _stored(store) == 1
    assert len(forwarded()) == 1


class FreezingProxy:
    """A TCP proxy on loopback to PostgreSQL that can stop forwarding (a frozen server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            self.flowing.wait()
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.flowing.set()
        self.listener.close()
        for each in self.sockets:
            # close() alone does not wake a pump blocked in recv() on Linux, so no FIN
            # reaches PostgreSQL and a backend idle in transaction keeps its locks.
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                each.close()


def _behind_a_freezing_proxy(
    tmp_path: Path, database_url: str, sink: Sink
) -> tuple[FreezingProxy, Config]:
    """A relay's configuration whose PostgreSQL is reached through a FreezingProxy."""
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = FreezingProxy((real.host or "127.0.0.1", real.port or 5432))
    proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    config = load_config(
        write_config(
            tmp_path,
            proxied,
            smtp=_smtp_section(_free_port(), intake_timeout='"2s"'),
            database=f'url = "{proxied}"\nconnect_timeout = "2s"\nstatement_timeout = "2s"',
            delivery='transport = "smtp"\npoll_interval = "1s"',
            smarthost=f'host = "127.0.0.1"\nport = {sink.port}',
        )
    )
    return proxy, config


@pytest.mark.postgres
@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs RELAY_TEST_DATABASE_URL")
def test_a_frozen_postgresql_answers_451(tmp_path: Path, database_url: str, sink: Sink):
    proxy, config = _behind_a_freezing_proxy(tmp_path, database_url, sink)
    store = db.Store(database_url)
    db.upgrade(store)
    pair = make_pair(store, config)
    from tests.conftest import RunningRelay

    relay = RunningRelay(config)
    try:
        proxy.flowing.clear()
        with (
            relay.smtp() as client,
            pytest.raises((smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused)) as refused,
        ):
            client.sendmail(pair.mentee, [pair.address], wire(mail(pair.mentee, pair.address)))
        error = refused.value
        code = (
            error.smtp_code
            if isinstance(error, smtplib.SMTPDataError)
            else next(iter(error.recipients.values()))[0]
        )
        assert code == 451
    finally:
        proxy.flowing.set()
        relay.stop()
        proxy.close()
        store.dispose()


@pytest.mark.postgres
def test_postgresql_frozen_after_rcpt_holds_the_intake_thread_not_the_loop(
    tmp_path: Path, database_url: str, sink: Sink
):
    """PostgreSQL's messages are decided in one intake thread: a server frozen while it
    reads holds that thread, yet DATA is answered 451 in time, another session is
    answered meanwhile, and after the thaw the next message is taken."""
    proxy, config = _behind_a_freezing_proxy(tmp_path, database_url, sink)
    store = db.Store(database_url)
    db.upgrade(store)
    pair = make_pair(store, config)
    from tests.conftest import RunningRelay

    relay = RunningRelay(config)
    codes: list[int] = []
    try:
        relay.send(mail(pair.mentee, pair.address, "before"), pair.mentee, pair.address)
        with relay.smtp() as client:  # RCPT is answered from memory for a few seconds
            client.ehlo()
            client.mail(pair.mentee)
            assert client.rcpt(pair.address)[0] == 250
            proxy.flowing.clear()
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(wire(mail(pair.mentee, pair.address, "frozen")) + b"\r\n.\r\n")
            with relay.smtp() as other:  # the loop answers while the intake thread waits
                assert other.noop()[0] == 250
            codes.append(client.getreply()[0])
        proxy.flowing.set()
        relay.send(mail(pair.mentee, pair.address, "after"), pair.mentee, pair.address)
        wait_for(lambda: _subjects(store) == ["after", "before"], 20, "the mail after the thaw")
    finally:
        proxy.flowing.set()
        relay.stop()
        proxy.close()
        store.dispose()
    assert codes == [451]


def _subjects(store: db.Store) -> list[str]:
    with store.read_session() as session:
        return sorted(session.scalars(select(Message.subject)))


# -- stop ------------------------------------------------------------------------------


@pytest.mark.sqlite
def test_sigterm_stops_serve_with_an_intake_stuck_in_a_thread(tmp_path: Path, database_url: str):
    config_path = write_config(
        tmp_path,
        database_url,
        smtp=_smtp_section(_free_port(), intake_timeout='"1s"'),
        daemon='pid_file = "relay.pid"\nstop_grace = "1s"',
    )
    config = load_config(config_path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    pair = make_pair(store, config)
    store.dispose()
    daemon = Daemon(tmp_path, config_path)
    daemon.expect("READY=1")
    replies: list[int] = []

    def send() -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError), daemon.smtp() as client:
            try:
                client.sendmail(pair.mentee, [pair.address], wire(mail(pair.mentee, pair.address)))
                replies.append(250)
            except smtplib.SMTPDataError as error:
                replies.append(error.smtp_code)
            except smtplib.SMTPRecipientsRefused as error:
                replies.extend(code for code, _ in error.recipients.values())

    with sqlite_write_lock(config.database.url):  # held past the stop: the intake never ends
        sender = threading.Thread(target=send)
        sender.start()
        sender.join(20)
        daemon.process.send_signal(signal.SIGTERM)
        try:
            code = daemon.process.wait(15)
        finally:
            if daemon.process.poll() is None:
                daemon.process.kill()
    assert replies == [451]
    assert code == 0
    assert "exiting without it" in daemon.output


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_running_out_of_file_descriptors_is_logged_once(
    tmp_path: Path, database_url: str, event_loop: str
):
    """1,100 idle connections once wrote 389 MB of "accept() out of system resource".

    uvloop says nothing at all (libuv closes what it cannot take): the relay's own
    watch on its descriptors says it, once, as for asyncio's error."""
    port = _free_port()
    config_path = write_config(
        tmp_path,
        database_url,
        # Limits above what the process can open: the descriptors run out first.
        smtp=_smtp_section(port, max_connections="1000", max_connections_per_ip="1000"),
        daemon=f'pid_file = "relay.pid"\nstop_grace = "1s"\nevent_loop = "{event_loop}"',
    )
    config = load_config(config_path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    store.dispose()

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "relay", "-c", str(config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=few_descriptors,
        )
        opened: list[socket.socket] = []
        try:
            wait_for(lambda: "is running" in log_path.read_text(), 20, "the relay to start")
            for _ in range(150):
                opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(3.5)  # asyncio retries accept() every second
        finally:
            for each in opened:
                each.close()
            process.send_signal(signal.SIGTERM)
            process.wait(20)
    output = log_path.read_text()
    assert "out of file descriptors" in output
    assert output.count("out of system resource") + output.count("out of file descriptors") == 1
