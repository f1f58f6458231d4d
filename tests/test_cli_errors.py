"""Every CLI error path: one line on stderr starting "Error:", exit status 1, never a traceback.

`invoke` turns an exception that escaped the command into output holding its
traceback, so a path that would show a user a traceback fails here on
"Traceback", exactly as it would look in a terminal. A few paths also run
the installed command in a subprocess (a real terminal's view).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from relay.cli import cli
from relay.config import load_config
from relay.intake import Incoming, Intake
from relay.store import db
from relay.store.models import Participant
from tests.conftest import TEST_DATABASE_URL, free_port, write_config
from tests.conftest import _empty_postgres as empty_postgres

MENTOR = "ana@mentors.example.org"
MENTEE = "ben@school.example.net"
HUGE = "99999999999999999999999"


def invoke(config: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["-c", str(config), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"relay {' '.join(args)} escaped:\n{shown}")
    return result


def assert_error(result: Result, expected: str) -> None:
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: "), result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """A pair with one message, approved (held first: the pair is watched).

    One for the module: the error paths change nothing (that is part of what they test).
    """
    folder = tmp_path_factory.mktemp("world")
    if TEST_DATABASE_URL:
        empty_postgres(TEST_DATABASE_URL)
    database_url = TEST_DATABASE_URL or f"sqlite:///{folder / 'relay.db'}"
    path = write_config(folder, database_url)
    upgraded = invoke(path, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    for email, name, role in ((MENTOR, "Ana", "mentor"), (MENTEE, "Ben", "mentee")):
        added = invoke(path, "participant", "add", email, "--name", name, "--role", role)
        assert added.exit_code == 0, added.output
    address = invoke(path, "pair", "create", "--mentor", MENTOR, "--mentee", MENTEE).output.strip()
    assert invoke(path, "watch", address).exit_code == 0
    config = load_config(path)
    store = db.open_store(config.database.url)
    raw = f"From: {MENTOR}\r\nTo: {address}\r\nSubject: Hi\r\n\r\nHello Ben\r\n".encode()
    outcome = Intake(store, config).accept(Incoming(raw, MENTOR, [address], "smtp"))
    store.dispose()
    message_id = outcome.message_ids[0]
    assert invoke(path, "approve", str(message_id), "--as", "mo").exit_code == 0
    return path, address, message_id


ERROR_PATHS = [
    (("approve", HUGE), f"no message {HUGE}"),
    (("approve", "424242"), "no message 424242"),
    (("reject", HUGE, "--reason", "no"), f"no message {HUGE}"),
    (("show", HUGE), f"no message {HUGE}"),
    (("audit", "--message", HUGE), f"no message {HUGE}"),
    (("queue", "retry", HUGE), f"no outbox entry {HUGE}"),
    (("queue", "retry", "4242"), "outbox 4242: no such entry"),
    (("log", "{pair}", "--show", HUGE), f"no message {HUGE}"),
    (("log", "zzzzzzzzzzzzz@relay.test"), "no pair with the address"),
    (("pair", "show", "zzzzzzzzzzzzz@relay.test"), "no pair with the address"),
    (("pair", "create", "--mentor", MENTOR, "--mentee", MENTEE), "already paired"),
    (("participant", "add", "c@x.example", "--name", "Ann\nX", "--role", "mentor"), "line break"),
    (("participant", "add", "c@x.example", "--name", "A\x1b[2J", "--role", "mentor"), "control"),
    (("participant", "add", "c@x.example", "--name", "Ann\u202e", "--role", "mentor"), "U+202E"),
    (("participant", "add", "c@x.example", "--name", "A" * 101, "--role", "mentor"), "at most 100"),
    (("participant", "add", "c@x.example", "--name", "  ", "--role", "mentor"), "display name"),
    (("participant", "add", "not-an-address", "--name", "C", "--role", "mentor"), "not an email"),
    (("participant", "add", "c@localhost", "--name", "C", "--role", "mentor"), "not an email"),
    (("participant", "add", "c d@x.example", "--name", "C", "--role", "mentor"), "not an email"),
    (("participant", "add", "{pair}", "--name", "C", "--role", "mentor"), "relay's own domain"),
    (
        (
            "participant",
            "add",
            "c@x.example",
            "--name",
            "C",
            "--role",
            "mentor",
            "--also",
            "x@Relay.Test",
        ),
        "relay's own domain",
    ),
    (
        (
            "participant",
            "add",
            "c@x.example",
            "--name",
            "C",
            "--role",
            "mentor",
            "--time-zone",
            "Mars/Base",
        ),
        "unknown time zone",
    ),
    (("participant", "add", MENTOR, "--name", "Again", "--role", "mentor"), "already registered"),
    (("participant", "show", "nobody@x.example"), "no participant"),
    (("participant", "edit", "nobody@x.example", "--name", "N"), "no participant"),
    (("participant", "edit", MENTOR, "--name", "Ana\r\nBcc: x@evil.example"), "line break"),
    (("participant", "edit", MENTOR, "--role", "mentee"), "a role changes only outside a pair"),
    (("participant", "edit", MENTOR, "--time-zone", "Europe/Nowhere"), "unknown time zone"),
    (("participant", "address", "add", MENTOR, "{pair}"), "relay's own domain"),
    (("participant", "address", "add", MENTOR, MENTEE), "already registered"),
    (("participant", "address", "add", MENTOR, "bad address"), "not an email"),
    (("participant", "address", "remove", MENTOR, MENTOR), "main address"),
    (("participant", "address", "remove", MENTOR, "other@x.example"), "is not an address of"),
    (("participant", "remove", MENTOR), "1 open pair"),
    (("participant", "remove", "nobody@x.example"), "no participant"),
    (("held", "--rule", "NOSUCH"), "the rules are: attachments, "),
    (("watch", "nobody@x.example"), "no participant"),
    (("export", "{pair}", "--mbox", "{existing}"), "already exists"),
    (("export", "zzzzzzzzzzzzz@relay.test", "--mbox", "{new}"), "no pair with the address"),
    (("export", "{pair}", "--mbox", "{missing_folder}/x.mbox"), "No such file or directory"),
    (("queue", "retry", "1"), "outbox 1: is queued, only failed or deferred mail can be retried"),
    (("review", "--pair", "nosuch"), "no pair with the address 'nosuch'"),
    (("imap", "check"), "no [imap] section"),
    (("db", "upgrade", "--revision", "nosuch"), "cannot upgrade to revision 'nosuch'"),
    (("match", "apply", "{existing}"), "file is empty (expected a header row)"),
    (("-c", "{missing_folder}/relay.toml", "held"), "configuration file not found"),
]


@pytest.mark.parametrize(
    ("args", "expected"), ERROR_PATHS, ids=[" ".join(args)[:40] for args, _ in ERROR_PATHS]
)
def test_error_paths_are_one_line_on_stderr(world, tmp_path: Path, args, expected):
    path, address, _ = world
    existing = tmp_path / "existing.mbox"
    existing.write_text("")
    filled = [
        each.format(
            pair=address,
            existing=existing,
            new=tmp_path / "new.mbox",
            missing_folder=tmp_path / "missing",
        )
        for each in args
    ]
    assert_error(invoke(path, *filled), expected)


def test_approving_twice_is_an_error_saying_who(world):
    path, _, message_id = world
    again = invoke(path, "approve", str(message_id), "--as", "other")
    assert_error(again, f"message {message_id} was already approved by mo at")
    assert again.stdout == ""


def test_a_name_stored_before_the_checks_is_an_error_not_a_traceback(world):
    path, _, _ = world
    config = load_config(path)
    for email, name, role in (("cy@x.example", "Cy", "mentor"), ("di@x.example", "Di", "mentee")):
        assert (
            invoke(path, "participant", "add", email, "--name", name, "--role", role).exit_code == 0
        )
    store = db.Store(config.database.url)
    with store.session() as session:  # as an older relay could have stored it
        session.execute(
            update(Participant)
            .where(Participant.email == "cy@x.example")
            .values(display_name="C\nY")
        )
    store.dispose()
    created = invoke(path, "pair", "create", "--mentor", "cy@x.example", "--mentee", "di@x.example")
    assert_error(created, "relay participant edit cy@x.example --name NAME")


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("bogus://foo", "unknown kind of database 'bogus'"),
        ("notaurl", "'notaurl' is not a database URL"),
        ("mysql://relay:pw@localhost/relay", "needs the Python package mysqlclient"),
        ("mysql+pymysql://relay:pw@localhost/relay", "needs the Python package PyMySQL"),
        ("sqlite:///{folder}/not-a-database.txt", "is not a SQLite database"),
        ("sqlite:///{folder}", "is a folder, not a SQLite file"),
        ("sqlite:///{folder}/typo.db", "typo.db does not exist"),
    ],
)
@pytest.mark.parametrize(
    "command", [("participant", "list"), ("held",), ("db", "current"), ("check-config",)]
)
def test_database_urls_that_cannot_work(tmp_path: Path, url: str, expected: str, command):
    if command == ("check-config",) and "typo.db" in url:
        expected = ""  # check-config only says a missing file would be created
    (tmp_path / "not-a-database.txt").write_text("hello\n")
    path = write_config(tmp_path, url.format(folder=tmp_path))
    result = invoke(path, *command)
    if not expected:
        assert result.exit_code == 0, result.output
        return
    assert_error(result, expected)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.sqlite
def test_only_serve_and_db_upgrade_create_a_database(tmp_path: Path):
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/typo.db")
    assert_error(invoke(path, "held"), "does not exist")
    assert invoke(path, "db", "upgrade").exit_code == 0
    assert invoke(path, "held").output.strip() == "(none)"


def test_bad_matching_section_fails_match_and_check_config_only(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url, matching='colour = "red"')
    assert invoke(path, "db", "upgrade").exit_code == 0
    checked = invoke(path, "check-config")
    assert checked.exit_code == 1 and "unknown key 'colour'" in checked.stderr
    assert "[relay]" in checked.stdout  # the settings are still shown
    (tmp_path / "m.csv").write_text("email,name\n")
    matched = invoke(
        path, "match", "--mentors", str(tmp_path / "m.csv"), "--mentees", str(tmp_path / "m.csv")
    )
    assert_error(matched, "unknown key 'colour'")
    assert invoke(path, "participant", "list").exit_code == 0


def _relay(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "relay", "-c", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.sqlite
def test_in_a_terminal_bad_input_shows_no_traceback(tmp_path: Path):
    bogus = write_config(tmp_path, "bogus://foo")
    done = _relay(bogus, "participant", "list")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr


def test_serve_with_the_port_taken_names_the_running_relay(tmp_path: Path, database_url: str):
    port = free_port()
    path = write_config(
        tmp_path,
        database_url,
        smtp=f'host = "127.0.0.1"\nport = {port}',
        daemon='pid_file = "relay.pid"',
    )
    assert invoke(path, "db", "upgrade").exit_code == 0  # PostgreSQL: serve creates no schema
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        other = _relay(path, "serve")
        assert other.returncode == 1 and "Traceback" not in other.stderr
        assert other.stderr.splitlines()[-1].startswith("Error: cannot listen on 127.0.0.1:")
        assert "another program" in other.stderr
        # This test process holds the port, as a running relay would, and its pid file says so.
        (tmp_path / "relay.pid").write_text(f"{os.getpid()}\n")
        again = _relay(path, "serve")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert (
        f"a relay is already running (pid {os.getpid()}, from {tmp_path / 'relay.pid'})"
        in again.stderr
    )


def test_serve_runs_with_a_bad_matching_section_and_warns(tmp_path: Path, database_url: str):
    from tests.test_operations import Daemon

    path = write_config(tmp_path, database_url, matching='colour = "red"')
    assert invoke(path, "db", "upgrade").exit_code == 0
    daemon = Daemon(tmp_path, path)
    try:
        daemon.expect("READY=1")
    finally:
        assert daemon.stop() == 0
    warned = [line for line in daemon.output.splitlines() if "WARNING" in line]
    assert any("[matching]" in line and "unknown key 'colour'" in line for line in warned)
