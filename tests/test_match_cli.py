"""`relay match` and `relay match apply`: from two CSV files to live pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.config import load_config
from relay.store import db
from relay.store.models import OutboxEntry, Pair
from tests.conftest import write_config

MENTORS = """email,name,field,interests,languages,time_zone,organisation,capacity
ana@mentors.example.org,Ana Ruiz,Civil engineering,bridges;maths,Spanish;English,Europe/Madrid,Acme,1
raj@mentors.example.org,Raj Patel,Medicine,biology,English,Europe/London,Health Trust,1
"""
MENTEES = """email,name,field,interests,languages,time_zone,organisation
lea@school.example.net,Lea,Civil engineering,bridges,Spanish,Europe/Madrid,Northside School
tom@school.example.net,Tom,Medicine,biology,English,Europe/London,Northside School
kai@school.example.net,Kai,Law,debate,Japanese,Asia/Tokyo,Eastside School
"""


@pytest.fixture
def cohort(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    (tmp_path / "mentors.csv").write_text(MENTORS)
    (tmp_path / "mentees.csv").write_text(MENTEES)

    def run(*args: str):
        return CliRunner().invoke(cli, ["-c", str(path), *args], catch_exceptions=False)

    assert run("db", "upgrade").exit_code == 0
    return tmp_path, run


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_match_proposes_explains_and_lists_unmatched(cohort):
    folder, run = cohort
    out = folder / "proposals.csv"
    result = run(
        "match",
        "--mentors",
        str(folder / "mentors.csv"),
        "--mentees",
        str(folder / "mentees.csv"),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "2 matched, 1 unmatched" in result.output
    assert "kai@school.example.net" in result.output and "language" in result.output
    rows = {row["mentee_email"]: row for row in read(out)}
    assert rows["lea@school.example.net"]["mentor_email"] == "ana@mentors.example.org"
    assert rows["tom@school.example.net"]["mentor_email"] == "raj@mentors.example.org"
    reasons = rows["lea@school.example.net"]["reasons"].lower()
    assert "civil engineering" in reasons and "spanish" in reasons


def test_apply_creates_exactly_the_proposed_pairs(cohort):
    folder, run = cohort
    out = folder / "proposals.csv"
    run(
        "match",
        "--mentors",
        str(folder / "mentors.csv"),
        "--mentees",
        str(folder / "mentees.csv"),
        "--out",
        str(out),
    )
    # A coordinator edits the file: the unmatched row goes.
    rows = read(out)
    edited = [row for row in rows if row["mentee_email"] != "kai@school.example.net"]
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(edited)
    applied = run("match", "apply", str(out))
    assert applied.exit_code == 0, applied.output
    assert "2 pairs created" in applied.output
    config = load_config(folder / "relay.toml")
    store = db.Store(config.database.url)
    try:
        with store.session() as session:
            pairs = {(p.mentor.email, p.mentee.email) for p in session.scalars(select(Pair))}
            intros = session.scalars(select(OutboxEntry).where(OutboxEntry.notice == "intro")).all()
        assert pairs == {
            ("ana@mentors.example.org", "lea@school.example.net"),
            ("raj@mentors.example.org", "tom@school.example.net"),
        }
        assert len(intros) == 4
    finally:
        store.dispose()
    # Matching again never proposes a pair that exists.
    again = run(
        "match",
        "--mentors",
        str(folder / "mentors.csv"),
        "--mentees",
        str(folder / "mentees.csv"),
        "--out",
        str(folder / "again.csv"),
    )
    proposed = {
        (r["mentor_email"], r["mentee_email"])
        for r in read(folder / "again.csv")
        if r["mentor_email"]
    }
    assert again.exit_code == 0 and not proposed & pairs


def test_apply_is_all_or_nothing(cohort):
    folder, run = cohort
    bad = folder / "bad.csv"
    bad.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name\n"
        "lea@school.example.net,Lea,ana@mentors.example.org,Ana\n"
        "tom@school.example.net,Tom,lea@school.example.net,Lea\n"
    )
    result = run("match", "apply", str(bad))
    assert result.exit_code == 1
    assert "bad.csv line 3" in result.output and "not a mentor" in result.output
    assert "(none)" in run("pair", "list").output


def test_bad_csv_is_a_clear_error(cohort):
    folder, run = cohort
    broken = folder / "broken.csv"
    broken.write_text("email,name,languages,time_zone\nx@y.example,X,English,Mars/Base\n")
    result = run("match", "--mentors", str(folder / "mentors.csv"), "--mentees", str(broken))
    assert result.exit_code == 1
    assert "broken.csv line 2" in result.output and "time_zone" in result.output


def test_bad_matching_settings_name_the_key(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url, matching='colour = "red"')
    result = CliRunner().invoke(cli, ["-c", str(path), "check-config"])
    assert result.exit_code == 1 and "unknown key 'colour'" in result.output
