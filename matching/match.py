"""match(): profiles + settings in, proposals with reasons out.

This module owns the order of the steps (score candidates, solve, audit, explain) and
the result types the CLI prints and writes. The heavy lifting lives in blocks.py,
candidates.py and solve.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .blocks import ScoreModel
from .candidates import BLOCK_CELLS, Candidates, Progress, collect_candidates, preference_order
from .profiles import Mentee, Mentor
from .score import RESOLUTION, explain, total_weight
from .settings import MatchSettings
from .solve import audit, solve_optimal, solve_stable

__all__ = ["MatchResult", "MatchSummary", "Proposal", "Unmatched", "match"]

Method = Literal["optimal", "stable"]


@dataclass(frozen=True, slots=True)
class Proposal:
    mentee_email: str
    mentee_name: str
    mentor_email: str
    mentor_name: str
    score: float  # in [0, 1]
    rank: int  # the mentor's place in this mentee's preference order, 1 = best
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unmatched:
    mentee_email: str
    mentee_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class MatchSummary:
    method: str
    matched: int
    unmatched: int
    mean_score: float  # over matched mentees; 0 when none
    total_score: float
    blocking_pairs: int


@dataclass(frozen=True, slots=True)
class MatchResult:
    proposals: tuple[Proposal, ...]
    unmatched: tuple[Unmatched, ...]
    summary: MatchSummary
    # Wall seconds per step ("scoring", "solving", "audit", "explaining"), for benchmarks
    # and a verbose CLI; not part of the match itself.
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def _check_unique(people: Sequence[Mentor] | Sequence[Mentee], what: str) -> None:
    seen: set[str] = set()
    for p in people:
        if p.email in seen:
            raise ValueError(f"{what} '{p.email}' appears twice")
        seen.add(p.email)


def _repair_edges(
    model: ScoreModel,
    cand: Candidates,
    assignment: NDArray[np.int64],
    capacities: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.float32]] | None:
    """Edges from unmatched mentees to admissible mentors that still have room.

    The candidate graph is sparse, so a mentee whose listed mentors all filled up can be
    left out although a mentor further down its list has a place; one more solve with
    these edges gives it that place.
    """
    load = np.bincount(assignment[assignment >= 0], minlength=model.n_mentors)
    room = load < capacities
    stuck = np.flatnonzero((assignment < 0) & (cand.admissible > 0) & ~cand.complete)
    if not stuck.size or not room.any():
        return None
    k = model.settings.candidates_per_mentee
    new_u: list[NDArray[np.int64]] = []
    new_m: list[NDArray[np.int64]] = []
    new_s: list[NDArray[np.float32]] = []
    step = max(16, BLOCK_CELLS // max(1, model.n_mentors))
    for start in range(0, stuck.size, step):
        chunk = stuck[start : start + step]
        block = model.block(chunk)
        block[:, ~room] = -1.0
        for i, u in enumerate(chunk):
            best = preference_order(block[i])[:k]
            new_u.append(np.full(best.size, u, np.int64))
            new_m.append(best.astype(np.int64))
            new_s.append(block[i, best])
    us, ms = np.concatenate(new_u), np.concatenate(new_m)
    if not us.size:
        return None
    edges = np.concatenate([cand.edges, np.stack([us, ms], axis=1)])
    edge_scores = np.concatenate([cand.edge_scores, np.concatenate(new_s)])
    _, first = np.unique(edges[:, 0] * model.n_mentors + edges[:, 1], return_index=True)
    return edges[first], edge_scores[first]


def match(
    mentors: Sequence[Mentor],
    mentees: Sequence[Mentee],
    settings: MatchSettings | None = None,
    method: Method = "optimal",
    exclude: Iterable[tuple[str, str]] = frozenset(),
    progress: Progress | None = None,
) -> MatchResult:
    """Propose a mentor for every mentee that can have one.

    exclude holds (mentor_email, mentee_email) pairs that must not be proposed (pairs
    that exist or ended). progress(done, total) is called after each block of mentees
    is scored, with total = number of mentees.
    """
    if method not in ("optimal", "stable"):
        raise ValueError(f"unknown method '{method}' (expected optimal or stable)")
    settings = settings or MatchSettings()
    _check_unique(mentors, "mentor")
    _check_unique(mentees, "mentee")
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    model = ScoreModel(mentors, mentees, settings, exclude)
    cand = collect_candidates(model, progress)
    lap("scoring")
    capacities = np.array([p.capacity for p in mentors], np.int64)
    max_points = float(RESOLUTION * total_weight(settings))
    if method == "optimal":
        assignment, points = solve_optimal(
            cand.edges, cand.edge_scores, capacities, len(mentees), max_points
        )
        repaired = _repair_edges(model, cand, assignment, capacities)
        if repaired is not None:
            assignment, points = solve_optimal(*repaired, capacities, len(mentees), max_points)
    else:
        assignment, points = solve_stable(model, cand, capacities)
    lap("solving")
    blocking, ranks = audit(model, cand, assignment, points, capacities)
    lap("audit")

    scale = max_points or 1.0
    proposals = []
    for u in np.flatnonzero(assignment >= 0).tolist():
        mentor, mentee = mentors[int(assignment[u])], mentees[u]
        proposals.append(
            Proposal(
                mentee_email=mentee.email,
                mentee_name=mentee.name,
                mentor_email=mentor.email,
                mentor_name=mentor.name,
                score=float(points[u]) / scale,
                rank=int(ranks[u]),
                reasons=tuple(explain(mentor, mentee, settings)),
            )
        )
    lost = np.flatnonzero(assignment < 0)
    none_admissible = lost[cand.admissible[lost] == 0]
    why = dict(zip(none_admissible.tolist(), model.diagnose(none_admissible), strict=True))
    unmatched = []
    for u in lost.tolist():
        reason = why.get(u)
        if reason is None:
            count = int(cand.admissible[u])
            reason = (
                "the only suitable mentor is full"
                if count == 1
                else f"all {count} suitable mentors are full"
            )
        unmatched.append(Unmatched(mentees[u].email, mentees[u].name, reason))
    total = sum(p.score for p in proposals)
    summary = MatchSummary(
        method=method,
        matched=len(proposals),
        unmatched=len(unmatched),
        mean_score=total / len(proposals) if proposals else 0.0,
        total_score=total,
        blocking_pairs=blocking,
    )
    lap("explaining")
    if progress is not None:
        progress(len(mentees), len(mentees))
    return MatchResult(tuple(proposals), tuple(unmatched), summary, timings)
