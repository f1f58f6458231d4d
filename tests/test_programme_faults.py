"""The programme under bad input and faults: broken curricula, a tick killed with
SIGKILL half-way, two relays ticking one PostgreSQL database at once."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay import service
from relay.config import load_config
from relay.programme.curriculum import shipped_folder
from relay.store import db
from relay.store.models import OutboxEntry, ScheduledSend
from tests.conftest import TEST_DATABASE_URL, RunningRelay, free_port, wait_for, write_config
from tests.programme_helpers import at, bulk_cohort, next_monday, ok, run


def broken_copy(tmp_path: Path, change) -> Path:
    folder = tmp_path / "curriculum"
    shutil.copytree(shipped_folder(), folder)
    change(folder)
    return folder


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        (
            lambda f: replace_in(f / "curriculum.toml", 'to = "both"', 'too = "both"'),
            "curriculum.toml line 9",
            "unknown key 'too'",
        ),
        (
            lambda f: (f / "week02_hopes.txt.j2").unlink(),
            "curriculum.toml line 16",
            "no template week02_hopes.txt.j2",
        ),
        (
            lambda f: replace_in(f / "week03_how_we_work.txt.j2", "{{ reader_name }}", "{% if %}"),
            "week03_how_we_work.txt.j2 line 3",
            "expression",
        ),
        (
            lambda f: replace_in(f / "curriculum.toml", 'kind = "prompt"', 'kind = "lecture"'),
            "curriculum.toml line 8",
            "kind must be prompt, checkin or closing",
        ),
        (
            lambda f: replace_in(f / "curriculum.toml", "week = 1\n", "week = 1\nweek = 2\n"),
            "curriculum.toml line 8",
            "not valid TOML",
        ),
    ],
)
def test_a_broken_curriculum_is_refused_naming_file_and_line(
    tmp_path: Path, config_path: Path, store: db.Store, change, where: str, problem: str
):
    folder = broken_copy(tmp_path, change)
    result = run(
        config_path, "cohort", "create", "c", "--start", "2030-01-07", "--curriculum", str(folder)
    )
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("Error: ") and where in line and problem in line, line
    assert "Traceback" not in result.output
    assert "(none)" in ok(config_path, "cohort", "list")


def test_weeks_beyond_the_cohort_and_check_config(tmp_path: Path, database_url: str):
    short = run_config(tmp_path, database_url, "")
    result = run(short, "cohort", "create", "c", "--start", "2030-01-07", "--weeks", "20")
    assert result.exit_code == 1
    assert "curriculum.toml line 91: week 21 is beyond the cohort's 20 weeks" in result.output

    folder = broken_copy(
        tmp_path, lambda f: replace_in(f / "curriculum.toml", "week = 34", "week = x")
    )
    broken = run_config(tmp_path, database_url, f'curriculum = "{folder}"')
    checked = run(broken, "check-config")
    assert checked.exit_code == 1
    assert "curriculum.toml line" in checked.output and "not valid TOML" in checked.output
    good = ok(run_config(tmp_path, database_url, ""), "check-config")
    assert "[programme]" in good and "23 items, ok" in good


def run_config(tmp_path: Path, database_url: str, programme: str) -> Path:
    path = write_config(tmp_path, database_url, programme=programme or 'time_zone = "UTC"')
    store = db.Store(database_url)
    db.upgrade(store)  # PostgreSQL is never created by a command
    store.dispose()
    return path


def test_bad_time_zone_and_dates_are_one_line_errors(config_path: Path, store: db.Store):
    for args, problem in [
        (
            (
                "participant",
                "add",
                "x@example.org",
                "--name",
                "X",
                "--role",
                "mentor",
                "--time-zone",
                "Mars/Olympus",
            ),
            "unknown time zone 'Mars/Olympus'",
        ),
        (("cohort", "create", "c", "--start", "next week"), "not a date"),
        (("tick", "--at", "tomorrow"), "not a time"),
        (("cohort", "show", "nope"), "no cohort called 'nope'"),
    ]:
        result = run(config_path, *args)
        assert result.exit_code == 1, result.output
        assert problem in result.output and "Traceback" not in result.output


def test_a_reload_with_a_broken_curriculum_keeps_the_old_one(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
):
    folder = broken_copy(tmp_path, lambda f: None)
    path = run_config(tmp_path, database_url, f'curriculum = "{folder}"')
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    running = RunningRelay(config)
    try:
        scheduler = running.running.scheduler
        assert scheduler is not None
        before = scheduler.curricula.loaded[""]
        replace_in(folder / "week05_goals.txt.j2", "{{ reader_name }}", "{% if %}")
        with caplog.at_level(logging.ERROR):
            service.reload(running.running)
        assert scheduler.curricula.loaded[""] is before
        assert "week05_goals.txt.j2 line 3" in caplog.text
        assert "keeping the old" in caplog.text
    finally:
        running.stop()
        store.dispose()


# -- exactly once ---------------------------------------------------------------

PAIRS = 3000
MESSAGE_ID = re.compile(rb"^Message-ID: (.*)$", re.MULTILINE)


def many_pairs(tmp_path: Path, url: str) -> tuple[Path, date]:
    path = write_config(tmp_path, url, smtp=f'host = "127.0.0.1"\nport = {free_port()}')
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    start = next_monday()
    bulk_cohort(store, config, PAIRS, start)
    store.dispose()
    return path, start


def tick_process(path: Path, when: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "-c", str(path), "tick", "--at", when],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def prompts_queued(path: Path) -> tuple[int, Counter[tuple[str, str]]]:
    store = db.Store(load_config(path).database.url)
    try:
        with store.session() as session:
            recorded = session.scalar(select(func.count(ScheduledSend.id))) or 0
            rows = session.execute(
                select(OutboxEntry.recipient, OutboxEntry.content).where(
                    OutboxEntry.notice == "prompt"
                )
            ).all()
    finally:
        store.dispose()
    copies = Counter(
        (recipient, MESSAGE_ID.search(content).group(1)) for recipient, content in rows
    )
    return recorded, copies


def recorded_count(path: Path) -> int:
    store = db.Store(load_config(path).database.url)
    try:
        with store.read_session() as session:
            return int(session.scalar(select(func.count(ScheduledSend.id))) or 0)
    finally:
        store.dispose()


def test_a_tick_killed_half_way_sends_nothing_twice(tmp_path: Path, database_url: str):
    path, start = many_pairs(tmp_path, database_url)
    killed = tick_process(path, at(start))
    wait_for(
        lambda: recorded_count(path) > 0 or killed.poll() is not None,
        timeout=60,
        what="the first batch",
    )
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    part, _ = prompts_queued(path)
    finished = tick_process(path, at(start))
    output = finished.communicate(timeout=120)[0].decode()
    assert finished.returncode == 0, output
    assert f"{2 * PAIRS - part} sent" in output
    again = ok(path, "tick", "--at", at(start))
    assert "0 sent" in again
    recorded, copies = prompts_queued(path)
    assert recorded == 2 * PAIRS
    assert len(copies) == 2 * PAIRS and max(copies.values()) == 1
    print(f"killed after {part} of {2 * PAIRS} sends were committed")


@pytest.mark.postgres
def test_two_relays_ticking_one_postgresql_send_nothing_twice(tmp_path: Path):
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set RELAY_TEST_DATABASE_URL=postgresql+psycopg://...")
    from tests.conftest import _empty_postgres

    _empty_postgres(TEST_DATABASE_URL)
    path, start = many_pairs(tmp_path, TEST_DATABASE_URL)
    first, second = tick_process(path, at(start)), tick_process(path, at(start))
    outputs = [each.communicate(timeout=180)[0].decode() for each in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    recorded, copies = prompts_queued(path)
    assert recorded == 2 * PAIRS
    assert len(copies) == 2 * PAIRS and max(copies.values()) == 1
    sent = [int(out.split(": ")[1].split(" sent")[0]) for out in outputs]
    assert sum(sent) == 2 * PAIRS, outputs
