"""Candidate pairs: each mentee's best K mentors and each mentor's best L mentees.

This module owns the one pass over all pairs. A mentee's preference order is score
descending, then mentor position ascending (the deterministic tie-break); its list here
is always an exact prefix of that order, which is what lets solve.py count blocking
pairs and run deferred acceptance without scoring every pair again. The mentor lists
exist so that a popular mentor's slots cannot crowd other mentors out of the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .blocks import ScoreModel

__all__ = [
    "BLOCK_CELLS",
    "Candidates",
    "Progress",
    "collect_candidates",
    "preference_order",
    "top_rows",
]

Progress = Callable[[int, int], None]
# About 8M pairs per block keeps each float32 block near 32 MB.
BLOCK_CELLS = 8_000_000


@dataclass
class Candidates:
    mentors: NDArray[np.int32]  # (n, K) best mentors per mentee, -1 padded
    scores: NDArray[np.float32]  # (n, K) their score points, -1 padded
    complete: NDArray[np.bool_]  # the list holds every admissible mentor
    admissible: NDArray[np.int32]  # admissible mentors per mentee
    edges: NDArray[np.int64]  # (E, 2) unique (mentee, mentor), sorted
    edge_scores: NDArray[np.float32]


def preference_order(scores: NDArray[np.float32]) -> NDArray[np.intp]:
    """Admissible mentor positions of one mentee's score row, best first."""
    admissible = np.flatnonzero(scores >= 0)
    order = np.lexsort((admissible, -scores[admissible]))
    return admissible[order]


def top_rows(block: NDArray[np.float32], k: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(row, col) of each row's first k entries in (score desc, col asc) order."""
    b, m = block.shape
    # Rows with fewer than k admissible mentors take all of them (threshold -0.5).
    kth = np.full(b, -0.5, np.float32)
    if m > k:
        kth = np.maximum(np.partition(block, m - k, axis=1)[:, m - k], kth)
    r1, c1 = np.nonzero(block > kth[:, None])
    need = k - np.bincount(r1, minlength=b)
    tied = np.flatnonzero((kth >= 0) & (need > 0))
    if tied.size:
        r2, c2 = np.nonzero(block[tied] == kth[tied][:, None])
        starts = np.searchsorted(r2, np.arange(tied.size))
        keep = np.arange(r2.size) - starts[r2] < need[tied][r2]
        r1 = np.concatenate([r1, tied[r2[keep]]])
        c1 = np.concatenate([c1, c2[keep]])
    return r1, c1


def _best_per_mentor(
    mentees: NDArray[np.int64], mentors: NDArray[np.int64], scores: NDArray[np.float32], keep: int
) -> NDArray[np.bool_]:
    order = np.lexsort((mentees, -scores, mentors))
    sorted_mentors = mentors[order]
    starts = np.searchsorted(sorted_mentors, sorted_mentors, side="left")
    chosen = np.zeros(order.size, bool)
    chosen[order[np.arange(order.size) - starts < keep]] = True
    return chosen


def _mentor_lists(
    model: ScoreModel, mentors: NDArray[np.intp], keep: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Each given mentor's best `keep` mentees as (mentee, mentor, score) triples."""
    n = model.n_mentees
    keep_u = np.zeros(0, np.int64)
    keep_m = np.zeros(0, np.int64)
    keep_s = np.zeros(0, np.float32)
    if not mentors.size:
        return keep_u, keep_m, keep_s
    step = max(16, BLOCK_CELLS // mentors.size)
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        block = model.block(rows, mentors)
        b = block.shape[0]
        if b > keep:
            # Only a column's `keep` best in this block can be among its `keep` best overall.
            floor = np.maximum(np.partition(block, b - keep, axis=0)[b - keep], 0)
        else:
            floor = np.zeros(mentors.size, np.float32)
        br, bc = np.nonzero(block >= floor[None, :])
        keep_u = np.concatenate([keep_u, rows[br].astype(np.int64)])
        keep_m = np.concatenate([keep_m, mentors[bc].astype(np.int64)])
        keep_s = np.concatenate([keep_s, block[br, bc]])
        chosen = _best_per_mentor(keep_u, keep_m, keep_s, keep)
        keep_u, keep_m, keep_s = keep_u[chosen], keep_m[chosen], keep_s[chosen]
    return keep_u, keep_m, keep_s


def collect_candidates(model: ScoreModel, progress: Progress | None = None) -> Candidates:
    n, m = model.n_mentees, model.n_mentors
    k = min(model.settings.candidates_per_mentee, max(m, 1))
    per_mentor = model.settings.candidates_per_mentor
    top_mentors = np.full((n, k), -1, np.int32)
    top_scores = np.full((n, k), -1.0, np.float32)
    admissible = np.zeros(n, np.int32)
    step = max(16, BLOCK_CELLS // max(m, 1))
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        if m:
            block = model.block(rows)
            admissible[rows] = np.count_nonzero(block >= 0, axis=1)
            r, c = top_rows(block, k)
            s = block[r, c]
            order = np.lexsort((c, -s, r))
            r, c, s = r[order], c[order], s[order]
            pos = np.arange(r.size) - np.searchsorted(r, r)
            top_mentors[rows[r], pos] = c
            top_scores[rows[r], pos] = s
        if progress is not None:
            progress(int(rows[-1]) + 1, n)

    listed = top_mentors >= 0
    mentee_u = np.repeat(np.arange(n, dtype=np.int64), k)[listed.ravel()]
    mentee_m = top_mentors[listed].astype(np.int64)
    mentee_s = top_scores[listed]
    # A mentor already on enough mentees' lists has its edges; the rest (often those who
    # are nobody's favourite) get their own best mentees so that their places are used.
    seen = np.bincount(mentee_m, minlength=m)
    keep_u, keep_m, keep_s = _mentor_lists(model, np.flatnonzero(seen < per_mentor), per_mentor)
    all_u = np.concatenate([mentee_u, keep_u])
    all_m = np.concatenate([mentee_m, keep_m])
    all_s = np.concatenate([mentee_s, keep_s])
    key, first = np.unique(all_u * max(m, 1) + all_m, return_index=True)
    edges = np.stack([key // max(m, 1), key % max(m, 1)], axis=1)
    return Candidates(
        mentors=top_mentors,
        scores=top_scores,
        complete=admissible <= k,
        admissible=admissible,
        edges=edges,
        edge_scores=all_s[first],
    )
