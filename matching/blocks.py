"""Vectorised scoring: the score of every mentor for a block of mentees at once.

This module owns the translation of profiles into feature matrices such that one
matrix product gives score.py's combined score (times RESOLUTION * total weight) for
every pair, and a second gives the hard filters (shared language, time-zone limit,
same-gender requests); organisations, mandatory criteria and excluded pairs are
applied on top. All numbers are small integers, so float32 products are exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .profiles import Mentee, Mentor, normalise_tag
from .score import HALF_DAY, RESOLUTION, minutes_apart
from .settings import MatchSettings, Weight

__all__ = ["INADMISSIBLE", "ScoreModel"]

INADMISSIBLE = np.float32(-1.0)
# Each hard-rule violation subtracts this from the shared-language count, so a pair is
# admissible exactly when the filter product is >= 1. It must exceed any language count.
VETO = 4096.0
# Above this many feature columns a sparse-times-dense product beats dense BLAS.
DENSE_LIMIT = 1024


class _Features:
    """Mentee features (sparse rows) and mentor features (dense columns) being laid out."""

    def __init__(self, n_mentees: int, n_mentors: int) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.mentor_columns: list[NDArray[np.float32]] = []
        self.n_mentees = n_mentees
        self.n_mentors = n_mentors

    def add_column(self, mentor_values: NDArray[np.float32]) -> int:
        self.mentor_columns.append(mentor_values)
        return len(self.mentor_columns) - 1

    def set(self, mentee: int, column: int, value: float) -> None:
        self.rows.append(mentee)
        self.cols.append(column)
        self.vals.append(value)

    def build(self) -> tuple[sp.csr_array, NDArray[np.float32]]:
        width = max(1, len(self.mentor_columns))
        left = sp.csr_array(
            (np.array(self.vals, np.float32), (np.array(self.rows), np.array(self.cols))),
            shape=(self.n_mentees, width),
            dtype=np.float32,
        )
        right = np.zeros((width, self.n_mentors), np.float32)
        for i, column in enumerate(self.mentor_columns):
            right[i] = column
        left.sum_duplicates()
        return left, right


def _vocabulary(left: Iterable[Sequence[str]], right: Iterable[Sequence[str]]) -> dict[str, int]:
    """Tags present on both sides; any other tag can never be shared."""
    a = {normalise_tag(t) for items in left for t in items}
    b = {normalise_tag(t) for items in right for t in items}
    return {t: i for i, t in enumerate(sorted(a & b))}


def _ids(values: Sequence[str], vocab: dict[str, int], missing: int) -> NDArray[np.int32]:
    return np.array(
        [vocab.get(normalise_tag(v), missing) if v else missing for v in values], np.int32
    )


def _columns(matrix: NDArray[np.float32], cols: NDArray[np.intp]) -> NDArray[np.float32]:
    """The given columns as a C-contiguous matrix: numpy hands a product to BLAS only
    then (``matrix[:, cols]`` is Fortran-ordered, and multiplying it is ~15x slower)."""
    return np.take(matrix, cols, axis=1)


class ScoreModel:
    """Scores and admissibility of every (mentee, mentor) pair, computed block by block."""

    def __init__(
        self,
        mentors: Sequence[Mentor],
        mentees: Sequence[Mentee],
        settings: MatchSettings,
        exclude: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.mentors = mentors
        self.mentees = mentees
        self.settings = settings
        n, m = len(mentees), len(mentors)
        self.n_mentees, self.n_mentors = n, m
        self._score_left, self._score_right = self._score_features()
        self._filter_left, self._filter_right = self._filter_features()
        self._overlaps: list[tuple[sp.csr_array, NDArray[np.float32]]] = []
        self._overlap_names: list[str] = []
        for criterion in ("interests", "goals"):
            if settings.weight(criterion) is Weight.MANDATORY:
                self._overlaps.append(self._overlap_features(criterion))
                self._overlap_names.append(criterion)
        orgs = _vocabulary([[p.organisation] for p in mentees], [[p.organisation] for p in mentors])
        self.separate_orgs = settings.separate_organisations and bool(orgs)
        self.mentee_org = _ids([p.organisation for p in mentees], orgs, -1)
        self.mentor_org = _ids([p.organisation for p in mentors], orgs, -2)
        fields = _vocabulary([[p.field] for p in mentees], [[p.field] for p in mentors])
        self.field_mandatory = settings.weight("field") is Weight.MANDATORY
        self.mentee_field = _ids([p.field for p in mentees], fields, -1)
        self.mentor_field = _ids([p.field for p in mentors], fields, -2)
        self.excluded = self._exclusions(exclude)
        self._classes: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None

    # -- feature layout -------------------------------------------------------------

    def _score_features(self) -> tuple[sp.csr_array, NDArray[np.float32]]:
        s, mentors, mentees = self.settings, self.mentors, self.mentees
        f = _Features(len(mentees), len(mentors))
        w = {c: s.weight(c).points for c in ("field", "interests", "goals", "language")}
        w["time_zone"] = s.weight("time_zone").points
        if w["field"]:
            vocab = _vocabulary([[p.field] for p in mentees], [[p.field] for p in mentors])
            cols = self._tag_columns(f, vocab, [[p.field] for p in mentors])
            for u, p in enumerate(mentees):
                if p.field and normalise_tag(p.field) in vocab:
                    f.set(u, cols[normalise_tag(p.field)], w["field"] * RESOLUTION)
        for criterion in ("interests", "goals"):
            if not w[criterion]:
                continue
            wanted = [getattr(p, criterion) for p in mentees]
            offered = [getattr(p, criterion) for p in mentors]
            vocab = _vocabulary(wanted, offered)
            cols = self._tag_columns(f, vocab, offered)
            for u, items in enumerate(wanted):
                share = w[criterion] * (RESOLUTION // max(1, len(items)))
                for t in items:
                    if normalise_tag(t) in vocab:
                        f.set(u, cols[normalise_tag(t)], share)
        if w["language"]:
            half = w["language"] * RESOLUTION // 2
            bias = f.add_column(np.ones(len(mentors), np.float32))
            vocab = _vocabulary([[p.languages[0]] for p in mentees], [p.languages for p in mentors])
            cols = self._tag_columns(f, vocab, [p.languages for p in mentors])
            for u, p in enumerate(mentees):
                f.set(u, bias, half)
                first = normalise_tag(p.languages[0])
                if first in vocab:
                    f.set(u, cols[first], half)
        if w["time_zone"]:
            offsets = sorted({p.utc_offset_minutes for p in mentees})
            mentor_offsets = [p.utc_offset_minutes for p in mentors]
            per_minute = RESOLUTION // HALF_DAY
            col_of = {}
            for z in offsets:
                values = [RESOLUTION - minutes_apart(z, o) * per_minute for o in mentor_offsets]
                col_of[z] = f.add_column(np.array(values, np.float32))
            for u, p in enumerate(mentees):
                f.set(u, col_of[p.utc_offset_minutes], w["time_zone"])
        return f.build()

    @staticmethod
    def _tag_columns(
        f: _Features, vocab: dict[str, int], offered: Sequence[Sequence[str]]
    ) -> dict[str, int]:
        matrix = np.zeros((len(vocab), len(offered)), np.float32)
        for m, items in enumerate(offered):
            for t in items:
                i = vocab.get(normalise_tag(t))
                if i is not None:
                    matrix[i, m] = 1.0
        return {t: f.add_column(matrix[i]) for t, i in vocab.items()}

    def _filter_features(self) -> tuple[sp.csr_array, NDArray[np.float32]]:
        s, mentors, mentees = self.settings, self.mentors, self.mentees
        f = _Features(len(mentees), len(mentors))
        self.filter_ranges: dict[str, tuple[int, int]] = {}
        vocab = _vocabulary([p.languages for p in mentees], [p.languages for p in mentors])
        cols = self._tag_columns(f, vocab, [p.languages for p in mentors])
        for u, p in enumerate(mentees):
            for t in p.languages:
                if normalise_tag(t) in vocab:
                    f.set(u, cols[normalise_tag(t)], 1.0)
        # Column ranges let diagnose() tell which rule left a mentee without mentors.
        self.filter_ranges["language"] = (0, len(f.mentor_columns))
        limit = s.max_time_zone_minutes
        if s.weight("time_zone") is Weight.MANDATORY:
            limit = min(limit, HALF_DAY - 1)
        mentor_offsets = [p.utc_offset_minutes for p in mentors]
        for z in sorted({p.utc_offset_minutes for p in mentees}):
            far = [minutes_apart(z, o) > limit for o in mentor_offsets]
            if any(far):
                col = f.add_column(np.array(far, np.float32))
                for u, p in enumerate(mentees):
                    if p.utc_offset_minutes == z:
                        f.set(u, col, -VETO)
        self.filter_ranges["time_zone"] = (self.filter_ranges["language"][1], len(f.mentor_columns))
        genders = sorted({p.gender for p in (*mentors, *mentees) if p.gender})
        for g in genders:
            # A mentee who asks for the same gender vetoes every mentor of another gender.
            other = np.array([p.gender != g for p in mentors], np.float32)
            col = f.add_column(other)
            for u, p in enumerate(mentees):
                if p.prefer_same_gender and p.gender == g:
                    f.set(u, col, -VETO)
            # A mentor who asks for the same gender is vetoed by every other mentee.
            asks = np.array([p.prefer_same_gender and p.gender == g for p in mentors], np.float32)
            if asks.any():
                col = f.add_column(asks)
                for u, p in enumerate(mentees):
                    if p.gender != g:
                        f.set(u, col, -VETO)
        self.filter_ranges["gender"] = (self.filter_ranges["time_zone"][1], len(f.mentor_columns))
        return f.build()

    def _overlap_features(self, criterion: str) -> tuple[sp.csr_array, NDArray[np.float32]]:
        f = _Features(self.n_mentees, self.n_mentors)
        wanted = [getattr(p, criterion) for p in self.mentees]
        offered = [getattr(p, criterion) for p in self.mentors]
        vocab = _vocabulary(wanted, offered)
        cols = self._tag_columns(f, vocab, offered)
        for u, items in enumerate(wanted):
            for t in items:
                if normalise_tag(t) in vocab:
                    f.set(u, cols[normalise_tag(t)], 1.0)
        return f.build()

    def _exclusions(self, exclude: Iterable[tuple[str, str]]) -> dict[int, NDArray[np.intp]]:
        mentor_index = {p.email: i for i, p in enumerate(self.mentors)}
        mentee_index = {p.email: i for i, p in enumerate(self.mentees)}
        pairs: dict[int, set[int]] = {}
        for mentor_email, mentee_email in exclude:
            m = mentor_index.get(mentor_email.strip().lower())
            u = mentee_index.get(mentee_email.strip().lower())
            if m is not None and u is not None:
                pairs.setdefault(u, set()).add(m)
        # Someone who is both a mentor and a mentee is never paired with themselves.
        for email, u in mentee_index.items():
            if email in mentor_index:
                pairs.setdefault(u, set()).add(mentor_index[email])
        return {u: np.array(sorted(ms), np.intp) for u, ms in pairs.items()}

    # -- evaluation -----------------------------------------------------------------

    @staticmethod
    def _product(left: sp.csr_array, right: NDArray[np.float32]) -> NDArray[np.float32]:
        if right.shape[0] <= DENSE_LIMIT:
            dense = left.toarray()
            return np.asarray(dense @ right, np.float32)
        return np.asarray(left @ right, np.float32)

    def raw_scores(
        self, rows: NDArray[np.intp], cols: NDArray[np.intp] | None = None
    ) -> NDArray[np.float32]:
        """Weighted score points of each row's mentee against every mentor (no filters)."""
        right = self._score_right if cols is None else _columns(self._score_right, cols)
        return self._product(self._score_left[rows], right)

    def admissible(
        self, rows: NDArray[np.intp], cols: NDArray[np.intp] | None = None
    ) -> NDArray[np.bool_]:
        """The hard filters for each row's mentee against every mentor (or those in cols)."""
        right = self._filter_right if cols is None else _columns(self._filter_right, cols)
        ok = self._product(self._filter_left[rows], right) >= 1.0
        for left_o, right_o in self._overlaps:
            right_o = right_o if cols is None else _columns(right_o, cols)
            ok &= self._product(left_o[rows], right_o) > 0
        mentor_org = self.mentor_org if cols is None else self.mentor_org[cols]
        mentor_field = self.mentor_field if cols is None else self.mentor_field[cols]
        if self.separate_orgs:
            ok &= self.mentee_org[rows][:, None] != mentor_org[None, :]
        if self.field_mandatory:
            ok &= self.mentee_field[rows][:, None] == mentor_field[None, :]
        banned_rows = [
            (i, self.excluded[u]) for i, u in enumerate(rows.tolist()) if u in self.excluded
        ]
        if banned_rows and cols is not None:
            position = np.full(self.n_mentors, -1, np.intp)
            position[cols] = np.arange(cols.size)
            banned_rows = [(i, position[b][position[b] >= 0]) for i, b in banned_rows]
        for i, banned in banned_rows:
            ok[i, banned] = False
        return ok

    def rule_classes(self) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Mentees whose languages, time zone and gender request are the same, grouped.

        Returns (class of each mentee, one mentee of each class). Within a class the
        language, time-zone and gender rules allow the same mentors, so a scan can score
        a class against those mentors only; in a cohort with a few languages and zones
        that is a fraction of all pairs.
        """
        if self._classes is not None:
            return self._classes
        left = self._filter_left
        left.sort_indices()
        indptr, indices, data = left.indptr, left.indices, left.data
        class_of: dict[bytes, int] = {}
        labels = np.empty(self.n_mentees, np.intp)
        first: list[int] = []
        for u in range(self.n_mentees):
            a, b = indptr[u], indptr[u + 1]
            key = indices[a:b].tobytes() + data[a:b].tobytes()
            label = class_of.setdefault(key, len(first))
            if label == len(first):
                first.append(u)
            labels[u] = label
        self._classes = labels, np.array(first, np.intp)
        return self._classes

    def allowed_by_rules(self, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
        """The language, time-zone and gender rules alone, for each row against every mentor
        (organisations, mandatory criteria and exclusions are not applied)."""
        return self._product(self._filter_left[rows], self._filter_right) >= 1.0

    def pair_points(self, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> NDArray[np.float32]:
        """Score points of the pairs (rows[i], cols[i]) alone, without their blocks."""
        left = self._score_left[rows].toarray()
        right = np.take(self._score_right, cols, axis=1).T
        # Whole numbers below 2**24: the sum is exact in float32, as in block().
        return np.asarray((left * right).sum(axis=1), np.float32)

    def diagnose(self, rows: NDArray[np.intp]) -> list[str]:
        """For mentees with no admissible mentor: the first rule that left none, in words."""
        if len(rows) == 0:
            return []
        if self.n_mentors == 0:
            return ["there are no mentors" for _ in rows]
        left = self._filter_left[rows]

        def part(name: str) -> NDArray[np.float32]:
            a, b = self.filter_ranges[name]
            if a == b:
                return np.zeros((len(rows), self.n_mentors), np.float32)
            return self._product(left[:, a:b], self._filter_right[a:b])

        hours = f"{self.settings.max_time_zone_hours:g} h"
        steps: list[tuple[str, NDArray[np.bool_]]] = [
            ("no mentor shares a language", part("language") >= 1),
            (f"no mentor who shares a language is within {hours}", part("time_zone") == 0),
        ]
        if self.separate_orgs:
            steps.append(
                (
                    "every mentor who shares a language and time zone"
                    " is from the same organisation",
                    self.mentee_org[rows][:, None] != self.mentor_org[None, :],
                )
            )
        steps.append(
            (
                "no otherwise suitable mentor meets the same-gender request",
                part("gender") == 0,
            )
        )
        if self.field_mandatory:
            steps.append(
                (
                    "no otherwise suitable mentor is in the same field (field is mandatory)",
                    self.mentee_field[rows][:, None] == self.mentor_field[None, :],
                )
            )
        for (left_o, right_o), name in zip(self._overlaps, self._overlap_names, strict=True):
            steps.append(
                (
                    f"no otherwise suitable mentor shares any of the {name} ({name} is mandatory)",
                    self._product(left_o[rows], right_o) > 0,
                )
            )
        ok = np.ones((len(rows), self.n_mentors), bool)
        reasons = [
            "every otherwise suitable mentor is already or was paired with this mentee"
            for _ in rows
        ]
        decided = np.zeros(len(rows), bool)
        for text, allowed in steps:
            ok &= allowed
            none_left = ~ok.any(axis=1) & ~decided
            for i in np.flatnonzero(none_left):
                reasons[i] = text
            decided |= none_left
        return reasons

    def block(
        self, rows: NDArray[np.intp], cols: NDArray[np.intp] | None = None
    ) -> NDArray[np.float32]:
        """Score points for each row's mentee and every mentor (or those in cols);
        INADMISSIBLE where a hard rule forbids the pair."""
        scores = self.raw_scores(rows, cols)
        return np.where(self.admissible(rows, cols), scores, INADMISSIBLE)
