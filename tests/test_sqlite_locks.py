"""Commands run beside open SQLite connections in one process must not drop their locks.

Closing any descriptor of a file drops every POSIX lock the process holds on it, so a
header read with open() by `relay queue` (or any command's URL check) in a process that
also holds the relay's connections let the next process to close its connection believe
it was the database's last user and delete the WAL under them. The tests run the
commands in-process beside an open store, as the test suite itself does beside an
in-thread daemon, then let another process write and close.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from relay.cli import cli
from relay.config import load_config
from relay.store import db
from relay.store.models import Participant
from tests.conftest import make_pair, write_config


@pytest.mark.sqlite
@pytest.mark.parametrize("command", [["queue"], ["participant", "list"]])
def test_a_command_in_process_leaves_the_open_connections_their_wal(
    tmp_path: Path, command: list[str]
) -> None:
    database = tmp_path / "relay.db"
    config_path = write_config(tmp_path, f"sqlite:///{database}")
    config = load_config(config_path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    make_pair(store, config)
    try:
        with store.read_session() as session:  # the pool now keeps a connection open
            before = session.scalar(select(func.count(Participant.id)))
        result = CliRunner().invoke(cli, ["-c", str(config_path), *command])
        assert result.exit_code == 0, result.output
        # Another process writes and closes: the last user of the file, if it sees no lock.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute(\"UPDATE participants SET display_name = 'Renamed'\")\n"
                "c.close()\n",
                str(database),
            ],
            check=True,
        )
        assert (tmp_path / "relay.db-wal").exists(), "the WAL was deleted under an open store"
        with store.read_session() as session:
            names = set(session.scalars(select(Participant.display_name)))
            assert session.scalar(select(func.count(Participant.id))) == before
        assert names == {"Renamed"}
    finally:
        store.dispose()
