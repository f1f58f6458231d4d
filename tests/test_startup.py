"""What a command loads before it works: the import discipline behind bench/startup.py.

`relay --help` must not load the database, mail, templates or matching
libraries; `relay status`, `relay queue`, `queue list` and `relay held` read
over a plain DB-API connection and load none of them either, SQLAlchemy
included. Checked in a fresh interpreter, by
the modules it ended with (the timings themselves live in bench/startup.py,
not in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from relay.store import db, migration_files

HEAVY = ("sqlalchemy", "alembic", "jinja2", "aiosmtpd", "aiosmtplib", "aioimaplib", "numpy",
         "scipy", "ortools", "dkim", "prometheus_client", "matplotlib")  # fmt: skip

RUN = """
import json, sys
from relay.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="relay")
except SystemExit:
    pass
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps(loaded), file=sys.stderr)
"""


def _run(*args: str, cwd: Path) -> tuple[set[str], str]:
    """The top-level modules `relay ARGS` ended with, and what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1])), done.stdout


def _loaded(*args: str, cwd: Path) -> set[str]:
    return _run(*args, cwd=cwd)[0]


def test_help_loads_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    assert _loaded("--help", cwd=tmp_path) & set(HEAVY) == set()
    assert _loaded("queue", "--help", cwd=tmp_path) & set(HEAVY) == set()


@pytest.mark.parametrize(
    ("command", "printed"),
    [
        (("status",), "outbox:           queued 0"),
        (("queue",), "nothing waiting"),
        (("queue", "list"), "(none)"),
        (("held",), "(none)"),
    ],
)
def test_reading_commands_load_no_sqlalchemy(
    tmp_path: Path, database_url: str, command: tuple[str, ...], printed: str
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[relay]\ndomain = "relay.test"\n\n[database]\nurl = "{database_url}"\n')
    store = db.Store(database_url)
    db.upgrade(store)
    store.dispose()

    loaded, output = _run("-c", str(config), *command, cwd=tmp_path)

    assert printed in output  # it read the database
    assert loaded & set(HEAVY) == set()


def test_the_quick_schema_check_agrees_with_alembic(tmp_path: Path) -> None:
    store = db.Store(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        assert migration_files.head_from_files() == db.head_revision(store)
        db.upgrade(store)
        assert db._quick_revision(store) == db.current_revision(store) == db.head_revision(store)
    finally:
        store.dispose()
