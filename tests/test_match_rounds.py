"""Matching in rounds: a second round knows who is paired, and apply checks first."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay.cli import cli
from tests.conftest import write_config

MENTORS = """email,name,languages,time_zone,capacity
ana@mentors.example.org,Ana,English,UTC,2
raj@mentors.example.org,Raj,English,UTC,1
"""
MENTEES = """email,name,languages,time_zone
lea@school.example.net,Lea,English,UTC
tom@school.example.net,Tom,English,UTC
kai@school.example.net,Kai,English,UTC
"""
LATE = """email,name,languages,time_zone
lea@school.example.net,Lea,English,UTC
tom@school.example.net,Tom,English,UTC
kai@school.example.net,Kai,English,UTC
zoe@school.example.net,Zoe,English,UTC
uma@school.example.net,Uma,English,UTC
"""


@pytest.fixture
def programme(tmp_path: Path, database_url: str):
    path = write_config(tmp_path, database_url)
    (tmp_path / "mentors.csv").write_text(MENTORS)
    (tmp_path / "mentees.csv").write_text(MENTEES)
    (tmp_path / "late.csv").write_text(LATE)

    def run(*args: str):
        return CliRunner().invoke(cli, ["-c", str(path), *args])

    assert run("db", "upgrade").exit_code == 0
    return tmp_path, run


def proposals(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["mentor_email"]]


def first_round(folder: Path, run) -> None:
    made = run("match", "--mentors", str(folder / "mentors.csv"), "--mentees",
               str(folder / "mentees.csv"), "--out", str(folder / "round1.csv"))  # fmt: skip
    assert made.exit_code == 0, made.output
    applied = run("match", "apply", str(folder / "round1.csv"))
    assert applied.exit_code == 0, applied.output
    assert "3 pairs created" in applied.output


def test_second_round_skips_paired_mentees_and_respects_capacity(programme):
    folder, run = programme
    first_round(folder, run)
    second = run("match", "--mentors", str(folder / "mentors.csv"), "--mentees",
                 str(folder / "late.csv"), "--out", str(folder / "round2.csv"))  # fmt: skip
    assert second.exit_code == 0, second.output
    for paired in ("lea", "tom", "kai"):
        assert f"already paired: {paired}@school.example.net" in second.output
    # Every place (2 + 1) is taken: the late joiners wait, with the true reason.
    assert proposals(folder / "round2.csv") == []
    assert "0 matched, 2 unmatched" in second.output
    assert "unmatched: uma@school.example.net: the 2 suitable mentors have no free places" in (
        second.output
    )
    assert "unmatched: zoe@school.example.net" in second.output


def test_apply_refuses_a_duplicate_mentee_or_a_full_mentor_and_applies_nothing(programme):
    folder, run = programme
    first_round(folder, run)
    bad = folder / "bad.csv"
    bad.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name,mentor_capacity\n"
        "zoe@school.example.net,Zoe,ana@mentors.example.org,Ana,2\n"
        "zoe@school.example.net,Zoe,raj@mentors.example.org,Raj,1\n"
        "lea@school.example.net,Lea,raj@mentors.example.org,Raj,1\n"
    )
    result = run("match", "apply", str(bad))
    assert result.exit_code == 1
    assert "bad.csv line 2: mentor ana@mentors.example.org has 2 places, 2 taken" in result.output
    assert "bad.csv line 3: mentee zoe@school.example.net is already on line 2" in result.output
    assert "bad.csv line 4: mentee lea@school.example.net is already paired at" in result.output
    assert "nothing was applied" in result.output
    listed = run("pair", "list").output
    assert "Zoe" not in listed and listed.count("active") == 3


def test_skip_bad_applies_the_good_rows_and_dry_run_changes_nothing(programme):
    folder, run = programme
    mixed = folder / "mixed.csv"
    mixed.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name\n"
        "lea@school.example.net,Lea,ana@mentors.example.org,Ana\n"
        "tom@school.example.net,Tom,lea@school.example.net,Lea\n"
    )
    dry = run("match", "apply", "--dry-run", "--skip-bad", str(mixed))
    assert dry.exit_code == 0, dry.output
    assert "would pair ana@mentors.example.org -> lea@school.example.net (line 2)" in dry.output
    assert "1 pair would be created (dry run)" in dry.output
    assert "(none)" in run("pair", "list").output
    applied = run("match", "apply", "--skip-bad", str(mixed))
    assert applied.exit_code == 0, applied.output
    assert "mixed.csv line 3: lea@school.example.net is a mentee on line 2, not a mentor" in (
        applied.output
    )
    assert "1 pair created" in applied.output


def test_a_participant_registered_differently_is_a_problem(programme):
    folder, run = programme
    assert run("participant", "add", "ana@mentors.example.org", "--name", "Ana",
               "--role", "mentee").exit_code == 0  # fmt: skip
    file = folder / "p.csv"
    file.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name\n"
        "lea@school.example.net,Lea,ana@mentors.example.org,Ana\n"
    )
    result = run("match", "apply", str(file))
    assert result.exit_code == 1
    assert "p.csv line 2: ana@mentors.example.org is registered as a mentee, not a mentor" in (
        result.output
    )


def test_rematch_proposes_a_new_mentor_never_the_old_one(programme):
    folder, run = programme
    first_round(folder, run)
    pairs = {row["mentee_email"]: row["mentor_email"] for row in proposals(folder / "round1.csv")}
    listed = run("pair", "list").output.splitlines()
    lea_pair = next(line.split()[0] for line in listed if "Lea" in line)
    assert run("pair", "end", lea_pair, "--reason", "mentee-left").exit_code == 0
    again = run("match", "--mentors", str(folder / "mentors.csv"), "--mentees",
                str(folder / "mentees.csv"), "--rematch", lea_pair,
                "--out", str(folder / "rematch.csv"))  # fmt: skip
    assert again.exit_code == 0, again.output
    (row,) = proposals(folder / "rematch.csv")
    assert row["mentee_email"] == "lea@school.example.net"
    assert row["mentor_email"] != pairs["lea@school.example.net"]
    tom_pair = next(line.split()[0] for line in listed if "Tom" in line)
    active = run("match", "--mentors", str(folder / "mentors.csv"), "--mentees",
                 str(folder / "mentees.csv"), "--rematch", tom_pair,
                 "--out", str(folder / "x.csv"))  # fmt: skip
    assert active.exit_code == 1 and "end it before re-matching" in active.output


def test_out_is_never_overwritten_without_force(programme):
    folder, run = programme
    out = folder / "proposals.csv"
    out.write_text("keep me")
    args = ["match", "--mentors", str(folder / "mentors.csv"), "--mentees",
            str(folder / "mentees.csv"), "--out", str(out)]  # fmt: skip
    refused = run(*args)
    assert refused.exit_code == 1 and "use --force" in refused.output
    assert out.read_text() == "keep me"
    assert run(*args, "--force").exit_code == 0
    assert out.read_text().startswith("mentee_email")


def test_blocking_pairs_are_explained_only_for_the_stable_method(programme):
    folder, run = programme
    args = ["match", "--mentors", str(folder / "mentors.csv"), "--mentees",
            str(folder / "mentees.csv"), "--force", "--out", str(folder / "p.csv")]  # fmt: skip
    optimal = run(*args)
    assert "blocking pair" not in optimal.output
    stable = run(*args, "--method", "stable")
    assert "0 blocking pairs (a blocking pair is a mentor and a mentee who would both" in (
        stable.output
    )
