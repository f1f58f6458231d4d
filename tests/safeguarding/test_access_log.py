"""Who read what: every command that shows message content is in the access log."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from relay.store.safeguarding_models import AccessLogEntry
from tests.conftest import MENTOR, Sink, mail
from tests.safeguarding.helpers import LEADS, count, messages, run


def test_every_content_command_lands_in_the_access_log(configured, sink: Sink, tmp_path: Path):
    relay, pair, store = configured(safeguarding=LEADS)
    relay.send(
        mail(MENTOR[0], pair.address, "Link", "https://example.com"), MENTOR[0], pair.address
    )
    relay.send(
        mail(MENTOR[0], pair.address, "Secret", "our little secret"), MENTOR[0], pair.address
    )
    [held, escalated] = messages(store)
    config = tmp_path / "relay.toml"

    assert run(config, "log", pair.address, "--as", "Ann").exit_code == 0
    assert run(config, "log", pair.address, "--show", str(held.id), "--as", "Ann").exit_code == 0
    assert run(config, "show", str(held.id), "--as", "Bo").exit_code == 0
    assert run(config, "show", str(escalated.id)).exit_code == 0  # the login name
    review = run(config, "review", "--as", "Cy", input="s\nq\n")
    assert review.exit_code == 0, review.output
    assert run(config, "concern", "show", "1", "--as", "Di").exit_code == 0

    reads = json.loads(run(config, "audit", "--reads", "--json").output)
    assert [(r["reader"], r["command"], r["message"]) for r in reads] == [
        ("Ann", "log", None),
        ("Ann", "log --show", held.id),
        ("Bo", "show", held.id),
        (getpass.getuser(), "show", escalated.id),
        ("Cy", "review", held.id),
        ("Cy", "review", escalated.id),
        ("Di", "concern show", None),
    ]
    assert reads[-1]["concern"] == 1
    assert all(r["pair"] == pair.address for r in reads)
    table = run(config, "audit", "--reads", "--pair", pair.address)
    assert table.exit_code == 0 and table.output.startswith("TIME (UTC)")
    assert len(table.output.splitlines()) == 8
    assert run(config, "audit", "--pair", pair.address).exit_code == 2  # --pair needs --reads


def test_the_access_log_refuses_updates_and_deletes(configured, tmp_path: Path):
    _relay, pair, store = configured()
    assert run(tmp_path / "relay.toml", "log", pair.address, "--as", "Ann").exit_code == 0
    for statement in ("UPDATE access_log SET reader = 'nobody'", "DELETE FROM access_log"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert count(store, AccessLogEntry) == 1
