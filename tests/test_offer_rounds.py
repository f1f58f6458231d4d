"""Two coordinators running `relay match offer` at the same moment, as separate processes.

Both rounds must read the database before either writes, or the test proves
nothing. `relay match offer` reads the database and then the CSV files; each
round's mentees file here is a named pipe, and the test writes the mentees into
it only when both rounds hold it open, so both have read the same free places.
What is asserted is what a coordinator checks: `relay offers --json` never holds
more places for a mentor than they have, and the round that stored second names
the mentees it could not place.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL, wait_for, write_config
from tests.programme_helpers import ok
from tests.test_offers import MENTORS_CSV

CAPACITY = {"Ana Ruiz": 1, "Raj Patel": 1, "Mei Chen": 2}  # MENTORS_CSV: 4 places
HEADER = "email,name,field,interests,goals,languages,time_zone,organisation\n"


def mentees_csv(people: list[str]) -> bytes:
    return (
        HEADER
        + "".join(
            f"{who}@school.example.net,{who.title()} Novak,Civil engineering,bridges;concrete,"
            "career change,English,Europe/London,Hill School\n"
            for who in people
        )
    ).encode()


def opened_for_writing(fifo: Path) -> int | None:
    """The pipe's write end once its round has opened it to read (after reading the database)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:  # no reader yet
            return None
        raise


def two_rounds_at_once(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    ok(config, "db", "upgrade")
    (tmp_path / "mentors.csv").write_text(MENTORS_CSV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    outputs = [tmp_path / f"round-{n}.out" for n in range(2)]
    pipes = [tmp_path / f"mentees-{n}.csv" for n in range(2)]
    processes = []
    for pipe, out in zip(pipes, outputs, strict=True):
        os.mkfifo(pipe)
        processes.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "relay", "-c", str(config), "match", "offer"),
                    *("--mentors", str(tmp_path / "mentors.csv"), "--mentees", str(pipe)),
                ],
                stdout=out.open("w"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    try:
        ends = [
            wait_for(lambda p=pipe: opened_for_writing(p), what=f"{pipe.name} read", timeout=120)
            for pipe in pipes
        ]
        for end, people in zip(ends, (["lea", "kai", "ida"], ["tom", "una", "eva"]), strict=True):
            os.write(end, mentees_csv(people))
            os.close(end)
    except BaseException:
        for process in processes:
            process.kill()
        raise
    for process in processes:
        assert process.wait(timeout=120) == 0
    said = [out.read_text() for out in outputs]

    offers = json.loads(ok(config, "offers", "--json"))
    held = Counter(c["mentor"] for o in offers for c in o["choices"] if c["reserved"])
    assert held and all(held[name] <= CAPACITY[name] for name in held), held
    offered = {o["mentee_email"] for o in offers}
    first, second = sorted(said, key=lambda output: "not placed" in output)
    assert "3 offers sent" in first and "not placed" not in first
    not_placed = [line for line in second.splitlines() if line.startswith("not placed: ")]
    assert len(not_placed) >= 2, second
    for line in not_placed:
        email = line.split(": ")[1]
        assert email not in offered
        assert "another round running at the same time; run the round again" in line
    assert f"{3 - len(not_placed)} offer" in second
    assert len(offers) == 3 + 3 - len(not_placed) <= sum(CAPACITY.values())
    assert f"{len(not_placed)} mentees without one" in second


@pytest.mark.sqlite
def test_two_rounds_at_once_on_sqlite_never_hold_more_places_than_a_mentor_has(
    tmp_path: Path,
):
    two_rounds_at_once(tmp_path, f"sqlite:///{tmp_path / 'relay.db'}")


@pytest.mark.postgres
def test_two_rounds_at_once_on_postgresql_never_hold_more_places_than_a_mentor_has(
    tmp_path: Path, database_url: str
):
    assert TEST_DATABASE_URL.startswith("postgresql"), "run with RELAY_TEST_DATABASE_URL"
    two_rounds_at_once(tmp_path, database_url)
