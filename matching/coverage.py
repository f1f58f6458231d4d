"""No mentee left out who could be matched: augmenting paths over the full graph.

The solver only sees candidate edges (each mentee's best mentors, each mentor's best
mentees), so on its own it can leave a mentee out although a suitable mentor still has
a place, or although moving another mentee to a different suitable mentor would free
one. This module closes that gap the textbook way (Berge's theorem, for capacities):
a breadth-first search from every unmatched mentee that has a suitable mentor walks the
*full* feasibility graph, alternating "a suitable mentor" with "a mentee that mentor
already has", until it reaches a mentor with a free place. The edges it walked are
added to the candidates and the solver runs again; when a search reaches no mentor
with room, no matching of the same hard rules and capacities covers more mentees, and
the unmatched reason can say exactly that.

Only the mentees the search reaches are scored, a block of rows at a time, so a cohort
that is already maximal costs one pass over its unmatched mentees.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .blocks import INADMISSIBLE, ScoreModel
from .candidates import BLOCK_CELLS

__all__ = ["augment", "has_room_for"]

Edges = tuple[NDArray[np.int64], NDArray[np.float32]]


def _members(
    assignment: NDArray[np.int64], n_mentors: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Mentees by mentor: ``order[starts[m]:starts[m + 1]]`` are mentor m's mentees."""
    matched = np.flatnonzero(assignment >= 0)
    order = matched[np.argsort(assignment[matched], kind="stable")]
    starts = np.searchsorted(assignment[order], np.arange(n_mentors + 1))
    return order, starts


class _Classes:
    """The rule classes of the mentees (ScoreModel.rule_classes) and, once asked for,
    the mentors the language, time-zone and gender rules allow each class."""

    def __init__(self, model: ScoreModel) -> None:
        self.model = model
        self.labels, self.firsts = model.rule_classes()
        self.allowed: dict[int, NDArray[np.bool_]] = {}

    def mentors_of(self, label: int) -> NDArray[np.bool_]:
        if label not in self.allowed:
            first = self.firsts[label : label + 1]
            self.allowed[label] = self.model.allowed_by_rules(first)[0]
        return self.allowed[label]


def _reach(
    model: ScoreModel, classes: _Classes, frontier: NDArray[np.intp], parent: NDArray[np.int64]
) -> NDArray[np.intp]:
    """Mentors not yet in the forest that some frontier mentee may have; each joins
    through the first such mentee (parent). Returns them.

    A class's mentees are checked only against its rule-allowed mentors that are not
    reached yet, so a layer costs about the mentors it reaches, not frontier x mentors.
    """
    reached: list[NDArray[np.intp]] = []
    labels = classes.labels[frontier]
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(frontier[order], bounds):
        open_mentors = classes.mentors_of(int(classes.labels[group[0]])) & (parent < 0)
        cols = np.flatnonzero(open_mentors)
        start = 0
        while cols.size and start < group.size:
            step = max(16, BLOCK_CELLS // cols.size)
            rows = group[start : start + step]
            start += step
            r, c = np.nonzero(model.admissible(rows, cols))
            if not c.size:
                continue
            by_mentor = np.argsort(c, kind="stable")
            found, first, count = np.unique(c[by_mentor], return_index=True, return_counts=True)
            # Spread the mentors over the mentees that reach them (the i-th mentor found
            # takes its (i mod count)-th mentee): paths from one root share it, and only
            # vertex-disjoint paths are flipped in a round, so one root for everything
            # (the first mentee reaches most mentors) meant one path per round.
            pick = first + np.arange(found.size) % count
            parent[cols[found]] = rows[r[by_mentor[pick]]]
            reached.append(cols[found])
            cols = cols[parent[cols] < 0]
    return np.concatenate(reached) if reached else np.zeros(0, np.intp)


def _search(
    model: ScoreModel,
    classes: _Classes,
    assignment: NDArray[np.int64],
    room: NDArray[np.bool_],
    suitable: NDArray[np.int32],
) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.intp]]:
    """One breadth-first search from every unmatched mentee that has a suitable mentor.

    Returns, for each mentor, the mentee through which the search reached it (-1: not
    reached) and that pair's score points, plus the mentors with room reached in the
    first layer that has any (empty: no augmenting path exists).
    """
    n_mentors = model.n_mentors
    order, starts = _members(assignment, n_mentors)
    parent = np.full(n_mentors, -1, np.int64)
    points = np.full(n_mentors, INADMISSIBLE, np.float32)
    seen_mentee = np.zeros(model.n_mentees, bool)
    frontier = np.flatnonzero((assignment < 0) & (suitable > 0))
    seen_mentee[frontier] = True
    while frontier.size:
        new_mentors = _reach(model, classes, frontier, parent)
        if not new_mentors.size:
            break
        with_room = new_mentors[room[new_mentors]]
        if with_room.size:
            reached = np.flatnonzero(parent >= 0)
            points[reached] = model.pair_points(parent[reached], reached)
            return parent, points, with_room
        # Every mentor reached is full: its mentees might move elsewhere to free a place.
        nxt = np.concatenate([order[starts[m] : starts[m + 1]] for m in new_mentors.tolist()])
        frontier = nxt[~seen_mentee[nxt]]
        seen_mentee[frontier] = True
    return parent, points, np.zeros(0, np.intp)


def augment(
    model: ScoreModel,
    assignment: NDArray[np.int64],
    scores: NDArray[np.float32],
    capacities: NDArray[np.int64],
    suitable: NDArray[np.int32],
) -> Edges | None:
    """Grow ``assignment`` (and ``scores``) in place to a maximum one.

    ``suitable`` counts each mentee's admissible mentors. Each round searches from all
    unmatched mentees at once and flips every vertex-disjoint augmenting path it found
    (as Hopcroft and Karp do), so a round covers many mentees. Returns the edges the
    flipped paths use that the caller's candidates may lack (so that a final solve over
    candidates plus these edges keeps the size and optimises the score), or None when
    the assignment was already maximum.
    """
    n_mentors = model.n_mentors
    if n_mentors == 0:
        return None
    used_u: list[int] = []
    used_m: list[int] = []
    used_s: list[float] = []
    classes = _Classes(model)
    while True:
        load = np.bincount(assignment[assignment >= 0], minlength=n_mentors)
        parent, points, ends = _search(model, classes, assignment, load < capacities, suitable)
        if not ends.size:
            break
        before = assignment.copy()  # paths are read off the forest as it was searched
        touched: set[int] = set()  # mentors and mentees (as ~index) on paths flipped
        for end in ends.tolist():
            path: list[int] = []
            mentor = end
            while mentor >= 0:
                path.append(mentor)
                mentor = int(before[parent[mentor]])
            nodes = {*path, *(~int(parent[m]) for m in path)}
            if nodes & touched:  # crosses a path flipped this round: the next search
                continue
            touched |= nodes
            for m in path:  # mentee parent[m] moves to m; the mentor it leaves is next
                u = int(parent[m])
                assignment[u] = m
                scores[u] = points[m]
                used_u.append(u)
                used_m.append(m)
                used_s.append(float(points[m]))
    if not used_u:
        return None
    edges = np.stack([np.array(used_u, np.int64), np.array(used_m, np.int64)], axis=1)
    return edges, np.array(used_s, np.float32)


def has_room_for(
    model: ScoreModel,
    mentees: NDArray[np.intp],
    assignment: NDArray[np.int64],
    capacities: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """For each given mentee: does any mentor suitable for it still have a free place?"""
    if model.n_mentors == 0 or mentees.size == 0:
        return np.zeros(mentees.size, bool)
    load = np.bincount(assignment[assignment >= 0], minlength=model.n_mentors)
    room = load < capacities
    if not room.any():
        return np.zeros(mentees.size, bool)
    free = np.flatnonzero(room)
    return np.asarray(model.admissible(mentees, free).any(axis=1))
