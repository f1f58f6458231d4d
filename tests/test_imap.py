"""The IMAP source against a real Dovecot: mail in a hosted mailbox is relayed exactly once.

The Dovecot fixture writes a minimal configuration into a temporary folder
(passwd-file logins, one Maildir per user, free loopback ports, a self-signed
certificate made with the openssl CLI, which dovecot-core depends on) and
runs `dovecot -F` for the whole module; every test logs in as a new user, so
each starts with an empty mailbox. A second listener on 127.0.0.2 hides MOVE
and UIDPLUS, for the copy / \\Deleted / EXPUNGE fallback. The test side looks
at the mailbox with the standard library's imaplib.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from relay.cli import cli
from relay.config import Config, load_config
from relay.errors import ConfigError
from relay.intake import Intake
from relay.sources.imap import ImapSource, envelope_sender, relay_recipient
from relay.store import db
from relay.store.models import ImapTaken, Message, OutboxEntry, OutboxKind
from tests.conftest import (
    DOMAIN,
    PairInfo,
    RunningRelay,
    Sink,
    free_port,
    mail,
    wait_for,
    write_config,
)

DOVECOT = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
NO_MOVE_HOST = "127.0.0.2"  # the listener whose capabilities hide MOVE and UIDPLUS
ACCOUNTS = 60  # one per test in this module, with room to spare
WAIT = 20.0  # seconds; generous bound for anything the relay does on its own

pytestmark = pytest.mark.skipif(
    DOVECOT is None, reason="dovecot is not installed (apt-get install dovecot-imapd)"
)


# -- the Dovecot fixture ----------------------------------------------------------------


class Dovecot:
    """One Dovecot instance in a temporary folder, with users added as tests need them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        self.ca_file = folder / "cert.pem"
        self.passwd = folder / "passwd"
        self.log = folder / "dovecot.log"
        self._numbers = count(1)
        self._process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            # Dovecot refuses to run mail processes as root; mail belongs to nobody.
            self.mail_user = pwd.getpwnam("nobody")
            privileged = ""
        else:
            self.mail_user = pwd.getpwuid(os.getuid())
            name = self.mail_user.pw_name
            privileged = f"default_internal_user = {name}\ndefault_login_user = {name}\n"
        mail = folder / "mail"
        mail.mkdir()
        os.chown(mail, self.mail_user.pw_uid, self.mail_user.pw_gid)
        for name in ("run", "state"):
            (folder / name).mkdir()
        # Every account up front: passwd-file is re-read only when its mtime (in whole
        # seconds) changes, so users added during the run could go unseen.
        self.passwd.write_text(
            "".join(
                f"relay{n}:{{PLAIN}}secret-{n}:{self.mail_user.pw_uid}:{self.mail_user.pw_gid}"
                f"::{folder / 'mail' / f'relay{n}'}\n"
                for n in range(1, ACCOUNTS + 1)
            )
        )
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(folder / "key.pem"),
                "-out",
                str(self.ca_file),
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.conf = folder / "dovecot.conf"
        self.conf.write_text(
            f"""
protocols = imap
listen = 127.0.0.1, {NO_MOVE_HOST}
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = relay-test-{self.port}
log_path = {self.log}
{privileged}ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{folder}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.passwd}
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
local {NO_MOVE_HOST} {{
  protocol imap {{
    imap_capability = IMAP4rev1 LITERAL+ IDLE
  }}
}}
"""
        )

    def start(self) -> None:
        assert DOVECOT is not None
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited: {error}{self.log_text()}")
            if all(_accepts(host, self.port) for host in ("127.0.0.1", NO_MOVE_HOST)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen within 15s\n{self.log_text()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._process = None
        # The master is gone; its listening sockets must be too before a restart.
        wait_for(lambda: not _accepts("127.0.0.1", self.port), 10, "dovecot's port to close")

    def restart(self) -> None:
        self.stop()
        self.start()

    def new_account(self) -> tuple[str, str]:
        """A user nobody has used yet, so its mailbox is empty."""
        number = next(self._numbers)
        assert number <= ACCOUNTS, "raise ACCOUNTS"
        return f"relay{number}", f"secret-{number}"

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    # Not pytest's tmp_path: that is private to root, and Dovecot's mail user must get in.
    folder = Path(tempfile.mkdtemp(prefix="relay-dovecot-"))
    folder.chmod(0o755)
    server = Dovecot(folder)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Account:
    """The hosted mailbox as a user would look at it: stdlib imaplib, plain login."""

    dovecot: Dovecot
    user: str
    password: str
    host: str = "127.0.0.1"

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        connection = imaplib.IMAP4(self.host, self.dovecot.port, timeout=10)
        try:
            connection.login(self.user, self.password)
            yield connection
        finally:
            with contextlib.suppress(Exception):
                connection.logout()

    def append(self, message: bytes, folder: str = "INBOX") -> None:
        with self.client() as connection:
            status, _ = connection.append(folder, None, None, message)
            assert status == "OK"

    def count(self, folder: str) -> int:
        """Messages in a folder that are not on their way out (0 if there is no such folder)."""
        with self.client() as connection:
            status, _ = connection.select(f'"{folder}"', readonly=True)
            if status != "OK":
                return 0
            status, data = connection.uid("SEARCH", "UNDELETED")
            return len(data[0].split())

    def first(self, folder: str = "INBOX") -> tuple[int, int, bytes]:
        """UIDVALIDITY, UID and bytes of the oldest message in a folder."""
        with self.client() as connection:
            connection.select(f'"{folder}"', readonly=True)
            _, data = connection.status(f'"{folder}"', "(UIDVALIDITY)")
            match = re.search(rb"UIDVALIDITY (\d+)", data[0])
            assert match
            _, found = connection.uid("SEARCH", "ALL")
            uid = int(found[0].split()[0])
            _, fetched = connection.uid("FETCH", str(uid), "(BODY.PEEK[])")
            raw = fetched[0][1]
            assert isinstance(raw, bytes)
            return int(match.group(1)), uid, raw


@pytest.fixture
def account(dovecot: Dovecot) -> Account:
    user, password = dovecot.new_account()
    return Account(dovecot, user, password)


def imap_section(
    account: Account, tls: str = "starttls", host: str = "127.0.0.1", **extra: str
) -> str:
    port = account.dovecot.tls_port if tls == "implicit" else account.dovecot.port
    lines = {
        "host": f'"{host}"',
        "port": str(port),
        "tls": f'"{tls}"',
        "ca_file": f'"{account.dovecot.ca_file}"',
        "user": f'"{account.user}"',
        "password": f'"{account.password}"',
        "timeout": '"5s"',
        "poll_interval": '"1s"',
        "idle_timeout": '"30s"',
        **extra,
    }
    return "\n".join(f"{key} = {value}" for key, value in lines.items())


@pytest.fixture
def config_path(tmp_path: Path, database_url: str, sink: Sink, account: Account) -> Path:
    """A relay with SMTP switched off, reading the account's INBOX, forwarding to the sink."""
    return write_config(
        tmp_path,
        database_url,
        smtp="enabled = false",
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        imap=imap_section(account),
    )


@contextlib.contextmanager
def running(config: Config) -> Iterator[RunningRelay]:
    relay = RunningRelay(config)
    try:
        yield relay
    finally:
        relay.stop()


def hosted(message_to: str, sender: str, subject: str = "Hello", **headers: str) -> bytes:
    """Mail as a catch-all mailbox stores it: Delivered-To names the pair address."""
    message = mail(sender, message_to, subject, **headers)
    message["Delivered-To"] = message_to
    return message.as_bytes()


def forwards(sink: Sink, recipient: str) -> list[bytes]:
    return [
        each.data
        for each in sink.to(recipient)
        if "Auto-Submitted" not in each.message  # introductions and other notices
    ]


def count_rows(store: db.Store, model: type[Message] | type[ImapTaken]) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- mail is relayed and moved ------------------------------------------------------------


def test_mail_in_the_inbox_is_relayed_and_moved(
    config: Config,
    store: db.Store,
    pair: PairInfo,
    account: Account,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level("INFO")
    # No Return-Path, as when a mailbox was filled by hand or by a forwarder: From decides.
    account.append(hosted(pair.address, f"Ana <{pair.mentor}>", "Careers"))
    with running(config):
        wait_for(lambda: forwards(sink, pair.mentee), WAIT, "the forward to the mentee")
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the message in Processed")
    assert account.count("INBOX") == 0
    forwarded = sink.to(pair.mentee)[-1].message
    assert forwarded["Subject"] == "Careers"
    assert forwarded["From"].addresses[0].addr_spec == pair.address
    assert pair.mentor not in forwarded.as_string()
    with store.session() as session:
        stored = session.scalars(select(Message)).one()
        assert stored.source == "imap"
        taken = session.scalars(select(ImapTaken)).one()
        assert (taken.refused, taken.message_ids) == (False, str(stored.id))
    relay_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("relay"))
    assert "UID 1" in relay_logs
    assert pair.mentor not in relay_logs and pair.mentee not in relay_logs


def test_the_pair_address_is_found_in_x_original_to_then_to_and_cc(
    config: Config, store: db.Store, pair: PairInfo, account: Account, sink: Sink
):
    # No outsider named anywhere (the rules would reject that): an empty group in To.
    via_original_to = mail(pair.mentee, "undisclosed-recipients:;", "One")
    via_original_to["X-Original-To"] = pair.address
    via_cc = mail(pair.mentee, "undisclosed-recipients:;", "Two", Cc=f"Pair <{pair.address}>")
    account.append(via_original_to.as_bytes())
    account.append(via_cc.as_bytes())
    with running(config):
        wait_for(lambda: len(forwards(sink, pair.mentor)) == 2, WAIT, "both forwards")
        wait_for(lambda: account.count("Processed") == 2, WAIT, "both in Processed")
    assert sorted(each.message["Subject"] for each in sink.to(pair.mentor)[-2:]) == ["One", "Two"]


def test_refused_mail_goes_to_the_refused_folder_without_a_bounce(
    config: Config, store: db.Store, pair: PairInfo, account: Account, sink: Sink
):
    stranger = "mallory@strangers.example"
    account.append(hosted(pair.address, stranger, "Let's meet"))
    account.append(hosted(f"2222222222222@{DOMAIN}", pair.mentor, "Unknown pair"))
    account.append(hosted("someone@elsewhere.example", pair.mentor, "No pair address"))
    with running(config):
        wait_for(lambda: account.count("Refused") == 3, WAIT, "three messages in Refused")
    assert account.count("INBOX") == 0
    assert account.count("Processed") == 0
    assert count_rows(store, Message) == 0
    with store.session() as session:
        replies = sorted(row.reply for row in session.scalars(select(ImapTaken)))
        assert all(row.refused for row in session.scalars(select(ImapTaken)))
        bounces = session.scalars(select(OutboxEntry).where(OutboxEntry.recipient == stranger))
        assert list(bounces) == []
    assert [reply[:9] for reply in replies] == ["550 5.1.1", "550 5.1.1", "550 5.7.1"]
    assert all(stranger not in each.recipients for each in sink.received)


def test_mail_the_rules_reject_is_kept_and_goes_to_processed(
    config: Config, store: db.Store, pair: PairInfo, account: Account
):
    account.append(hosted(pair.address, pair.mentor, "Hi", Cc="outsider@elsewhere.example"))
    with running(config):
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the message in Processed")
    with store.session() as session:
        stored = session.scalars(select(Message)).one()
        taken = session.scalars(select(ImapTaken)).one()
    assert stored.status == "rejected"
    assert not taken.refused and taken.reply.startswith("550")


def test_a_bounce_to_a_pair_address_is_refused(
    config: Config, store: db.Store, pair: PairInfo, account: Account
):
    account.append(hosted(pair.address, pair.mentor, "Undeliverable", Return_Path="<>"))
    with running(config):
        wait_for(lambda: account.count("Refused") == 1, WAIT, "the bounce in Refused")
    assert count_rows(store, Message) == 0


# -- nothing is taken twice -----------------------------------------------------------------


def test_a_crash_between_commit_and_move_takes_nothing_twice(
    config: Config, store: db.Store, pair: PairInfo, account: Account, sink: Sink
):
    account.append(hosted(pair.address, pair.mentor, "Once only"))
    uidvalidity, uid, raw = account.first()
    # What the source does before it moves the message; then the process dies.
    source = ImapSource(config, store, Intake(store, config))
    taken = source.take(uidvalidity, uid, raw)
    assert not taken.refused and taken.queued
    assert account.count("INBOX") == 1 and count_rows(store, Message) == 1

    with running(config):  # the restart
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the message in Processed")
        wait_for(lambda: forwards(sink, pair.mentee), WAIT, "the forward")
    assert account.count("INBOX") == 0
    assert count_rows(store, Message) == 1
    assert count_rows(store, ImapTaken) == 1
    with store.session() as session:
        queued = session.scalar(
            select(func.count(OutboxEntry.id)).where(OutboxEntry.kind == OutboxKind.FORWARD)
        )
    assert queued == 1
    assert len(forwards(sink, pair.mentee)) == 1


def test_a_restarted_relay_finds_nothing_new(
    config: Config, store: db.Store, pair: PairInfo, account: Account, sink: Sink
):
    account.append(hosted(pair.address, pair.mentor, "First"))
    with running(config):
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the message in Processed")
    account.append(hosted(pair.address, pair.mentee, "Second"))
    with running(config):
        wait_for(lambda: account.count("Processed") == 2, WAIT, "the second in Processed")
        wait_for(lambda: len(forwards(sink, pair.mentor)) == 1, WAIT, "the second forward")
    assert count_rows(store, Message) == 2
    assert len(forwards(sink, pair.mentee)) == 1


# -- waiting: IDLE, polling, a server that goes away -----------------------------------------


def test_a_message_arriving_while_idle_is_picked_up_within_seconds(
    tmp_path: Path, database_url: str, sink: Sink, account: Account, store: db.Store, pair: PairInfo
):
    # Polling and IDLE timeouts far beyond the wait below: only IDLE can bring the message.
    path = write_config(
        tmp_path,
        database_url,
        smtp="enabled = false",
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        imap=imap_section(account, poll_interval='"1h"', idle_timeout='"1h"'),
    )
    config = load_config(path)
    account.append(hosted(pair.address, pair.mentor, "Before"))
    with running(config):
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the first message taken")
        account.append(hosted(pair.address, pair.mentor, "While idle"))
        wait_for(lambda: account.count("Processed") == 2, 10, "the message that came while idle")
        wait_for(
            lambda: any(b"While idle" in each for each in forwards(sink, pair.mentee)),
            WAIT,
            "its forward",
        )
    assert count_rows(store, Message) == 2


def test_polling_when_idle_is_off(
    tmp_path: Path, database_url: str, sink: Sink, account: Account, store: db.Store, pair: PairInfo
):
    path = write_config(
        tmp_path,
        database_url,
        smtp="enabled = false",
        imap=imap_section(account, idle="false", poll_interval='"1s"'),
    )
    config = load_config(path)
    with running(config):
        account.append(hosted(pair.address, pair.mentor, "Polled"))
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the polled message")
    assert count_rows(store, Message) == 1


def test_the_imap_server_restarting_under_the_relay_is_survived(
    config: Config, store: db.Store, pair: PairInfo, account: Account, dovecot: Dovecot
):
    account.append(hosted(pair.address, pair.mentor, "Before the restart"))
    with running(config):
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the first message")
        dovecot.restart()
        account.append(hosted(pair.address, pair.mentor, "After the restart"))
        wait_for(lambda: account.count("Processed") == 2, WAIT, "the message after the restart")
    assert count_rows(store, Message) == 2


def test_a_server_without_move_gets_copy_delete_expunge(
    tmp_path: Path, database_url: str, account: Account, store: db.Store, pair: PairInfo
):
    no_move = Account(account.dovecot, account.user, account.password, host=NO_MOVE_HOST)
    with no_move.client() as connection:
        connection.capability()
        assert "MOVE" not in connection.capabilities
    path = write_config(
        tmp_path,
        database_url,
        smtp="enabled = false",
        imap=imap_section(account, tls="none", host=NO_MOVE_HOST),
    )
    config = load_config(path)
    no_move.append(hosted(pair.address, pair.mentor, "Moved the old way"))
    no_move.append(hosted(pair.address, "mallory@strangers.example", "Refused the old way"))
    with running(config):
        wait_for(lambda: no_move.count("Processed") == 1, WAIT, "the message in Processed")
        wait_for(lambda: no_move.count("Refused") == 1, WAIT, "the stranger's in Refused")
    with no_move.client() as connection:
        connection.select("INBOX", readonly=True)
        _, data = connection.uid("SEARCH", "ALL")
        assert data[0].split() == []  # expunged, not merely flagged
    assert count_rows(store, Message) == 1


# -- TLS and `relay imap check` ------------------------------------------------------------


def test_imap_check_logs_in_over_tls_and_counts_what_waits(
    tmp_path: Path, database_url: str, account: Account, pair: PairInfo
):
    path = write_config(
        tmp_path, database_url, smtp="enabled = false", imap=imap_section(account, tls="implicit")
    )
    account.append(hosted(pair.address, pair.mentor, "Waiting"))
    account.append(hosted(pair.address, pair.mentor, "Also waiting"))
    result = CliRunner().invoke(cli, ["-c", str(path), "imap", "check"])
    assert result.exit_code == 0, result.output
    assert f"logged in to 127.0.0.1:{account.dovecot.tls_port} as {account.user}" in result.output
    assert "tls: implicit" in result.output
    assert "IDLE" in result.output and "MOVE" in result.output
    assert "  INBOX" in result.output
    assert "Processed (missing; `relay serve` creates it)" in result.output
    assert "waiting in INBOX: 2" in result.output
    assert account.count("INBOX") == 2  # a check takes nothing


def test_imap_check_counts_what_was_taken_but_not_moved(
    config: Config, config_path: Path, store: db.Store, pair: PairInfo, account: Account
):
    account.append(hosted(pair.address, pair.mentor, "Taken, not moved"))
    uidvalidity, uid, raw = account.first()
    ImapSource(config, store, Intake(store, config)).take(uidvalidity, uid, raw)
    result = CliRunner().invoke(cli, ["-c", str(config_path), "imap", "check"])
    assert result.exit_code == 0, result.output
    assert "waiting in INBOX: 1 (1 already taken, to be moved only)" in result.output


def test_an_untrusted_certificate_is_a_clear_error(
    tmp_path: Path, database_url: str, account: Account
):
    section = imap_section(account, tls="implicit").replace(
        f'ca_file = "{account.dovecot.ca_file}"', 'ca_file = ""'
    )
    path = write_config(tmp_path, database_url, smtp="enabled = false", imap=section)
    result = CliRunner().invoke(cli, ["-c", str(path), "imap", "check"])
    assert result.exit_code == 1
    assert "Error: 127.0.0.1:" in result.output
    assert "CERTIFICATE_VERIFY_FAILED" in result.output


def test_a_wrong_password_is_a_clear_error(tmp_path: Path, database_url: str, account: Account):
    # Dovecot delays a failed login (2s, more after repeated failures from one address).
    section = imap_section(account, timeout='"20s"').replace(account.password, "wrong")
    path = write_config(tmp_path, database_url, smtp="enabled = false", imap=section)
    result = CliRunner().invoke(cli, ["-c", str(path), "imap", "check"])
    assert result.exit_code == 1
    assert f"login as {account.user} refused" in result.output
    assert "wrong" not in result.output


# -- configuration and header reading (no server needed, but kept with the source's tests) ----


def test_imap_check_without_an_imap_section_says_so(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    result = CliRunner().invoke(cli, ["-c", str(path), "imap", "check"])
    assert result.exit_code == 1
    assert "no [imap] section" in result.output


def test_an_imap_section_needs_a_host_and_a_user(tmp_path: Path):
    path = write_config(tmp_path, "sqlite:///x.db", imap='user = "relay"')
    with pytest.raises(ConfigError, match=r"\[imap\] host is required"):
        load_config(path)
    path = write_config(tmp_path, "sqlite:///x.db", imap='host = "imap.example"')
    with pytest.raises(ConfigError, match=r"\[imap\] user is required"):
        load_config(path)


def test_the_imap_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write_config(tmp_path, "sqlite:///x.db", imap='host = "imap.example"\nuser = "relay"')
    monkeypatch.setenv("RELAY_IMAP_PASSWORD", "from-env")
    config = load_config(path)
    assert config.imap.password == "from-env"
    assert config.imap.effective_port == 993
    result = CliRunner().invoke(cli, ["-c", str(path), "check-config"])
    assert "from-env" not in result.output


def test_delivered_to_wins_over_to_and_return_path_over_from():
    raw = (
        b"Return-Path: <srs0=abc@forwarder.example>\r\n"
        b"Delivered-To: relay-inbox@hosting.example\r\n"
        b"Delivered-To: 3333333333333@relay.test\r\n"
        b"To: 4444444444444@relay.test\r\n"
        b"From: Ana <ana@example.org>\r\n\r\nhi\r\n"
    )
    assert relay_recipient(raw, DOMAIN) == "3333333333333@relay.test"
    assert envelope_sender(raw) == "srs0=abc@forwarder.example"
    assert envelope_sender(raw.split(b"\r\n", 1)[1]) == "ana@example.org"
    assert relay_recipient(b"To: someone@elsewhere.example\r\n\r\nhi\r\n", DOMAIN) is None


def test_an_offer_choice_arriving_by_imap_and_by_smtp_acts_once(
    tmp_path: Path, database_url: str, sink: Sink, account: Account
):
    from tests.test_offers import (
        MENTEE,
        MENTEES_CSV,
        MENTORS_CSV,
        RAJ,
        letters_to,
        offer_round,
        one_letter,
        reply_address,
    )

    path = write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        imap=imap_section(account),
    )
    (tmp_path / "mentors.csv").write_text(MENTORS_CSV)
    (tmp_path / "mentees.csv").write_text(MENTEES_CSV)
    config = load_config(path)
    opened = db.Store(config.database.url)
    db.upgrade(opened)
    offer_round(path)
    with running(config) as relay:
        address = reply_address(one_letter(sink, MENTEE, "Choose your mentor"))
        choice = mail(MENTEE, address, "Re: Choose", "2")
        choice["Message-ID"] = "<the-choice@school.example.net>"
        relay.send(choice, MENTEE, address)  # by SMTP, and the same mail in the mailbox
        choice["Delivered-To"] = address
        account.append(choice.as_bytes())
        wait_for(lambda: account.count("Processed") == 1, WAIT, "the copy taken from IMAP")
        one_letter(sink, RAJ, "Would you mentor")
        relay.send(mail(MENTEE, address, "Marker", "hello?"), MENTEE, address)
        one_letter(sink, MENTEE, "Re: Marker")  # the answer to a later reply: caught up
    assert len(letters_to(sink, RAJ, "Would you mentor")) == 1
    assert not letters_to(sink, MENTEE, "Re: Choose")
    opened.dispose()
