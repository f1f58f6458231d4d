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
from threadpoolctl import threadpool_limits

from .blocks import ScoreModel
from .candidates import Candidates, Progress, collect_candidates
from .coverage import augment, has_room_for
from .profiles import Mentee, Mentor
from .score import RESOLUTION, explainer, total_weight
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


def _with_edges(
    cand: Candidates, extra: tuple[NDArray[np.int64], NDArray[np.float32]], n_mentors: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    edges = np.concatenate([cand.edges, extra[0]])
    edge_scores = np.concatenate([cand.edge_scores, extra[1]])
    _, first = np.unique(edges[:, 0] * max(n_mentors, 1) + edges[:, 1], return_index=True)
    return edges[first], edge_scores[first]


def _no_places(count: int) -> str:
    """Every suitable mentor has no place at all this round (current pairs fill them)."""
    if count == 1:
        return "the only suitable mentor has no free place"
    return f"the {count} suitable mentors have no free places"


def _all_full(count: int, method: Method) -> str:
    """Why a mentee with suitable mentors is unmatched; true by construction of each method.

    optimal: the assignment is of maximum size (coverage.augment found no augmenting
    path), so no reshuffle frees a place without leaving another mentee out. stable:
    deferred acceptance offered the mentee to each suitable mentor, and each kept
    mentees it ranks higher.
    """
    mentors = "the only suitable mentor is" if count == 1 else f"the {count} suitable mentors are"
    if method == "optimal":
        return f"{mentors} full and every way of freeing a place leaves another mentee out"
    return f"{mentors} full, each with mentees it ranks higher"


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
    # One BLAS thread: the products here are many and mid-sized, and OpenBLAS's threads
    # spin for each one; on a busy 2-core machine that made scoring 3-5x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _match(mentors, mentees, settings, method, exclude, progress)


def _match(
    mentors: Sequence[Mentor],
    mentees: Sequence[Mentee],
    settings: MatchSettings | None,
    method: Method,
    exclude: Iterable[tuple[str, str]],
    progress: Progress | None,
) -> MatchResult:
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
        # The candidates are a sparse sample of the pairs: cover every mentee the full
        # graph can, then let the solver pick the best-scoring assignment of that size.
        extra = augment(model, assignment, points, capacities, cand.admissible)
        if extra is not None:
            edges, edge_scores = _with_edges(cand, extra, model.n_mentors)
            assignment, points = solve_optimal(
                edges, edge_scores, capacities, len(mentees), max_points
            )
    else:
        assignment, points = solve_stable(model, cand, capacities)
    lap("solving")
    blocking, ranks = audit(model, cand, assignment, points, capacities)
    lap("audit")

    scale = max_points or 1.0
    explain = explainer(settings)
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
                reasons=tuple(explain(mentor, mentee)),
            )
        )
    lost = np.flatnonzero(assignment < 0)
    none_admissible = lost[cand.admissible[lost] == 0]
    why = dict(zip(none_admissible.tolist(), model.diagnose(none_admissible), strict=True))
    unmatched = []
    full_for = lost[cand.admissible[lost] > 0]
    if has_room_for(model, full_for, assignment, capacities).any():
        raise AssertionError("a mentee was left out although a suitable mentor has room")
    with_places = np.flatnonzero(capacities > 0)
    no_places = set(
        full_for[~model.admissible(full_for, with_places).any(axis=1)].tolist()
        if full_for.size
        else ()
    )
    for u in lost.tolist():
        count = int(cand.admissible[u])
        reason = why.get(u) or (_no_places(count) if u in no_places else _all_full(count, method))
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
