from __future__ import annotations

from pathlib import Path

import pytest
from matching_cohorts import mentee, mentor, random_cohort

from matching.match import match
from matching.proposals import ProposalError, read_proposals, write_proposals
from matching.settings import MatchSettings
from matching.solve import solve_optimal


def test_written_file_reads_back_and_survives_edits(tmp_path: Path) -> None:
    mentors = [mentor("ana@x.org", field="Art"), mentor("bo@x.org")]
    mentees = [mentee("xi@x.org", field="Art"), mentee("zo@x.org", languages=("Swahili",))]
    result = match(mentors, mentees, MatchSettings())
    path = tmp_path / "proposals.csv"
    write_proposals(path, result)
    lines = path.read_text().splitlines()
    assert lines[0] == (
        "mentee_email,mentee_name,mentor_email,mentor_name,score,rank,reasons,mentor_capacity"
    )
    assert lines[1].startswith("xi@x.org,Xi,ana@x.org,Ana,")
    assert lines[2] == "zo@x.org,Zo,,,,,unmatched: no mentor shares a language,"
    rows = read_proposals(path, mentors, mentees)
    assert [(r.mentee_email, r.mentor_email, r.line) for r in rows] == [
        ("xi@x.org", "ana@x.org", 2)
    ]
    # A coordinator swaps the mentor, drops the name, and fills in the unmatched row.
    path.write_text(
        "Mentee Email,mentor_email,mentor_name,note\n"
        "xi@x.org,BO@x.org,,checked by Sam\n"
        "zo@x.org,ana@x.org,Ana,\n"
    )
    rows = read_proposals(path, mentors, mentees)
    assert [(r.mentee_email, r.mentor_email, r.mentor_name) for r in rows] == [
        ("xi@x.org", "bo@x.org", "Bo"),
        ("zo@x.org", "ana@x.org", "Ana"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "mentee_email,mentor\nxi@x.org,ana@x.org",
            "p.csv line 1, column 'mentor_email': required column is missing",
        ),
        (
            "mentee_email,mentor_email\nxi@x.org,ana@x.org\nxi@x.org,ana at x",
            "p.csv line 3, column 'mentor_email': not an email address 'ana at x'",
        ),
        (
            "mentee_email,mentor_email\nxi@x.org,nobody@x.org",
            "p.csv line 2, column 'mentor_email': no mentor with email 'nobody@x.org'",
        ),
        (
            "mentee_email,mentor_email\nxi@x.org,ana@x.org\nXI@x.org,ana@x.org",
            "p.csv line 3, column 'mentor_email': the same pair already appears on line 2",
        ),
    ],
)
def test_bad_proposals_name_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text + "\n")
    with pytest.raises(ProposalError) as caught:
        read_proposals(path, [mentor("ana@x.org")], [mentee("xi@x.org")])
    assert str(caught.value) == message


def test_written_file_is_identical_for_the_same_input(tmp_path: Path) -> None:
    mentors, mentees = random_cohort(3)
    for name in ("a.csv", "b.csv"):
        write_proposals(tmp_path / name, match(mentors, mentees, MatchSettings()))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_both_flow_backends_reach_the_same_optimum() -> None:
    pytest.importorskip("ortools")
    import numpy as np

    rng = np.random.default_rng(5)
    edges = np.unique(np.stack([rng.integers(0, 60, 400), rng.integers(0, 20, 400)], 1), axis=0)
    points = rng.integers(0, 100, edges.shape[0]).astype(np.float32)
    caps = rng.integers(0, 4, 20).astype(np.int64)
    totals = []
    for backend in ("ortools", "scipy"):
        assignment, scores = solve_optimal(edges, points, caps, 60, 100.0, backend=backend)
        assert all(np.bincount(assignment[assignment >= 0], minlength=20) <= caps)
        totals.append((int((assignment >= 0).sum()), float(scores[assignment >= 0].sum())))
    assert totals[0] == totals[1]
