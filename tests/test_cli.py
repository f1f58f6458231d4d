"""The `relay` command line, driven through click's CliRunner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from relay.cli import cli
from relay.store import db
from tests.conftest import write_config


@pytest.fixture
def run(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    assert CliRunner().invoke(cli, ["--config", str(path), "db", "upgrade"]).exit_code == 0

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(path), *args], input=input)

    return invoke


def add_two(run) -> str:
    assert (
        run(
            "participant", "add", "Ana@Mentors.example.org", "--name", "Ana", "--role", "mentor"
        ).exit_code
        == 0
    )
    assert (
        run(
            "participant", "add", "ben@school.example.net", "--name", "Ben", "--role", "mentee"
        ).exit_code
        == 0
    )
    created = run(
        "pair",
        "create",
        "--mentor",
        "ana@mentors.example.org",
        "--mentee",
        "BEN@school.example.net",
    )
    assert created.exit_code == 0, created.output
    return created.output.strip()


def test_participants_and_pairs(run):
    address = add_two(run)
    assert address.endswith("@relay.test")
    token = address.split("@")[0]
    assert len(token) >= 13 and token == token.lower()

    listed = run("participant", "list")
    assert "ana@mentors.example.org" in listed.output
    assert "mentee  Ben" in listed.output

    pairs = run("pair", "list")
    assert address in pairs.output and "active" in pairs.output

    ended = run("pair", "end", address.upper(), "--reason", "completed")
    assert ended.exit_code == 0 and f"ended {address}" in ended.output
    assert "ended" in run("pair", "list").output
    assert run("pair", "list", "--active").output.strip() == "(none)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("participant", "add", "not-an-address", "--name", "X", "--role", "mentor"),
            "not an email address",
        ),
        (
            (
                "participant",
                "add",
                "ana@mentors.example.org",
                "--name",
                "Again",
                "--role",
                "mentor",
            ),
            "already registered",
        ),
        (
            (
                "pair",
                "create",
                "--mentor",
                "ben@school.example.net",
                "--mentee",
                "ana@mentors.example.org",
            ),
            "not a mentor",
        ),
        (
            (
                "pair",
                "create",
                "--mentor",
                "who@nowhere.example",
                "--mentee",
                "ben@school.example.net",
            ),
            "no participant",
        ),
        (
            ("pair", "end", "zzzzzzzzzzzzz@relay.test", "--reason", "other"),
            "no pair with the address",
        ),
        (("log", "zzzzzzzzzzzzz@relay.test"), "no pair with the address"),
    ],
)
def test_bad_requests_are_clear_errors(run, args, message):
    add_two(run)
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_pairing_twice_is_refused(run):
    add_two(run)
    again = run(
        "pair",
        "create",
        "--mentor",
        "ana@mentors.example.org",
        "--mentee",
        "ben@school.example.net",
    )
    assert again.exit_code == 1 and "already paired" in again.output


def test_bad_role_is_a_usage_error(run):
    result = run("participant", "add", "x@y.example", "--name", "X", "--role", "coach")
    assert result.exit_code == 2
    assert "'coach' is not one of 'mentor', 'mentee'" in result.output


def test_log_shows_transcript_and_one_message(run, tmp_path: Path):
    from relay.config import load_config
    from relay.intake import Incoming, Intake

    address = add_two(run)
    config = load_config(tmp_path / "relay.toml")
    store = db.open_store(config.database.url)
    raw = (
        f"From: ana@mentors.example.org\r\nTo: {address}\r\nSubject: First steps\r\n\r\nHello Ben\r\n"
    ).encode()
    outcome = Intake(store, config).accept(
        Incoming(raw, "ana@mentors.example.org", [address], "smtp")
    )
    store.dispose()
    assert outcome.reply.code == 250

    log = run("log", address)
    assert log.exit_code == 0
    line = log.output.splitlines()[1]
    assert "mentor" in line and "First steps" in line and "queued" in line
    shown = run("log", address, "--show", str(outcome.message_ids[0]))
    assert "Subject: First steps" in shown.output and "Hello Ben" in shown.output


def test_check_config_masks_secrets(tmp_path: Path, database_url: str):
    path = write_config(
        tmp_path, database_url, smarthost='host = "mx.example"\npassword = "hunter2"'
    )
    result = CliRunner().invoke(cli, ["-c", str(path), "check-config"])
    assert result.exit_code == 0
    assert 'password = "***"' in result.output and "hunter2" not in result.output
    assert 'hostname = ""  # empty: the greeting names relay.test' in result.output


def test_broken_config_is_reported(tmp_path: Path):
    path = tmp_path / "relay.toml"
    path.write_text('[relay]\ndomain = "x.test"\nport = 25\n')
    result = CliRunner().invoke(cli, ["-c", str(path), "participant", "list"])
    assert result.exit_code == 1
    assert f"{path}: unknown key 'port' in [relay]" in result.output


def test_database_behind_is_refused(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    from relay.config import load_config

    store = db.Store(load_config(path).database.url)
    db.downgrade(store, "base")
    db.upgrade(store, "0001")
    store.dispose()
    result = CliRunner().invoke(cli, ["-c", str(path), "participant", "list"])
    assert result.exit_code == 1
    assert "is at revision 0001" in result.output and "relay db upgrade" in result.output
    upgraded = CliRunner().invoke(cli, ["-c", str(path), "db", "upgrade"])
    assert upgraded.exit_code == 0
    assert CliRunner().invoke(cli, ["-c", str(path), "participant", "list"]).exit_code == 0


def test_installed_command_runs_from_any_folder(tmp_path: Path):
    """templates/ and migrations/ are package data: `relay` works away from the source tree."""
    shipped = Path(__file__).parent.parent / "relay.toml"
    config = tmp_path / "relay.toml"
    config.write_text(shipped.read_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    relay = [sys.executable, "-m", "relay", "-c", str(config)]
    for args in (
        ["db", "upgrade"],  # only `serve` and `db upgrade` create a database
        ["participant", "add", "ana@mentors.example.org", "--name", "Ana", "--role", "mentor"],
        ["participant", "add", "ben@school.example.net", "--name", "Ben", "--role", "mentee"],
        [
            "pair",
            "create",
            "--mentor",
            "ana@mentors.example.org",
            "--mentee",
            "ben@school.example.net",
        ],
    ):
        done = subprocess.run(relay + args, cwd=elsewhere, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    # Whatever the shipped file says (an operator may edit it), the pair is there.
    listed = subprocess.run(
        [*relay, "pair", "list"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() in listed.stdout
