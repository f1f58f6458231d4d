"""Candidate pairs: each mentee's best K mentors and each mentor's best L mentees.

This module owns the one pass over all pairs. A mentee's preference order is score
descending, then mentor position ascending (the deterministic tie-break); its list here
is always an exact prefix of that order, which is what lets solve.py count blocking
pairs and run deferred acceptance without scoring every pair again. The mentor lists
exist so that a popular mentor's slots cannot crowd other mentors out of the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
# Pairs below which scoring a block costs about as much as the call itself.
SMALL_BLOCK = 250_000


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


def _floor_of_top(block: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """Per row, a score at or below its k-th best admissible score (0 when it has fewer).

    The columns are cut into a few times k stretches; k stretches whose best score is at
    least t hold k pairs scoring at least t, so the k-th largest stretch maximum is such
    a floor. It costs one reduction over the block, where a selection over whole rows
    (np.partition) is several times slower and degrades on rows where most entries are
    the same value (most pairs are inadmissible, -1).
    """
    m = block.shape[1]
    stretches = min(m, 8 * k)
    starts = (np.arange(stretches) * m) // stretches
    maxima: NDArray[np.float32] = np.maximum.reduceat(block, starts, axis=1)
    if stretches > k:
        maxima = np.partition(maxima, stretches - k, axis=1)[:, stretches - k :]
    floor: NDArray[np.float32] = np.maximum(maxima.min(axis=1), np.float32(0.0))
    return floor


def top_rows(block: NDArray[np.float32], k: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(row, col) of each row's first k admissible entries in (score desc, col asc) order.

    Rows come in order and, within a row, the entries in that preference order; a row
    with fewer than k admissible mentors gives all of them.
    """
    b, m = block.shape
    if b == 0 or m == 0 or k <= 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    r, c = np.nonzero(block >= _floor_of_top(block, k)[:, None])
    # Few entries per row pass the floor (ties included): sort just those.
    order = np.lexsort((c, -block[r, c], r))
    r, c = r[order], c[order]
    keep = np.arange(r.size) - np.searchsorted(r, r) < k
    return r[keep], c[keep]


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


def _scan(model: ScoreModel) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp] | None]]:
    """Every mentee once, in blocks of (mentee rows, the mentors worth scoring for them).

    Mentees are taken class by class (ScoreModel.rule_classes) and each block is scored
    only against the mentors the language, time-zone and gender rules allow some mentee
    of the block (None: all mentors). The other pairs are inadmissible anyway, so the
    lists are the same as over all mentors; with six languages and five time zones this
    scores about a fifth of the pairs. Small classes share a block while that adds few
    pairs that no rule allows (SMALL_BLOCK), so that calls stay worth their overhead.
    """
    m = model.n_mentors
    labels, firsts = model.rule_classes()
    members = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[members], np.arange(firsts.size + 1))
    pending: list[NDArray[np.intp]] = []
    union = np.zeros(m, bool)
    size = 0
    chunk = max(1, BLOCK_CELLS // max(m, 1))

    def flush() -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp] | None]]:
        rows = np.sort(np.concatenate(pending))
        cols = np.flatnonzero(union)
        wide = cols.size > m // 2
        step = max(16, BLOCK_CELLS // max(1, m if wide else cols.size))
        for start in range(0, rows.size, step):
            yield rows[start : start + step], None if wide else cols

    for first in range(0, firsts.size, chunk):
        allowed = model.allowed_by_rules(firsts[first : first + chunk])
        for i, mask in enumerate(allowed):
            rows = members[bounds[first + i] : bounds[first + i + 1]]
            width, own = int(np.count_nonzero(union)), int(np.count_nonzero(mask))
            merged = (size + rows.size) * int(np.count_nonzero(union | mask))
            # Join the pending block only while that scores few pairs no rule allows.
            if pending and merged > SMALL_BLOCK + 1.25 * (size * width + rows.size * own):
                yield from flush()
                pending, size = [], 0
                union[:] = False
            pending.append(rows)
            union |= mask
            size += rows.size
    if pending:
        yield from flush()


def collect_candidates(model: ScoreModel, progress: Progress | None = None) -> Candidates:
    n, m = model.n_mentees, model.n_mentors
    k = min(model.settings.candidates_per_mentee, max(m, 1))
    per_mentor = model.settings.candidates_per_mentor
    top_mentors = np.full((n, k), -1, np.int32)
    top_scores = np.full((n, k), -1.0, np.float32)
    admissible = np.zeros(n, np.int32)
    done = 0
    for rows, cols in _scan(model) if m else ():
        if cols is None or cols.size:
            block = model.block(rows, cols)
            admissible[rows] = np.count_nonzero(block >= 0, axis=1)
            r, c = top_rows(block, k)
            s = block[r, c]
            pos = np.arange(r.size) - np.searchsorted(r, r)
            top_mentors[rows[r], pos] = c if cols is None else cols[c]
            top_scores[rows[r], pos] = s
        done += rows.size
        if progress is not None:
            progress(done, n)
    if progress is not None and not m:
        progress(n, n)

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
