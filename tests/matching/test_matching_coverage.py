"""No mentee left out who could be matched: the size of the match is the maximum.

The reference is scipy's maximum_bipartite_matching (Hopcroft-Karp) on the whole
feasibility graph, mentors expanded to one column per place.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_bipartite_matching

from matching import candidates
from matching.blocks import ScoreModel
from matching.candidates import _scan, collect_candidates, preference_order
from matching.match import match
from matching.profiles import Mentee, Mentor
from matching.settings import MatchSettings
from tests.matching.matching_cohorts import allowed, crowded_cohort, mentee, mentor

SETTINGS = MatchSettings()
# Short candidate lists make a 3,000-mentee cohort as sparse as a 30,000 one with the
# defaults: the situation in which mentors with room were cut off the lists.
SPARSE = MatchSettings.from_mapping({"candidates_per_mentee": 3, "candidates_per_mentor": 2})


def most_that_can_be_matched(mentors: list[Mentor], mentees: list[Mentee]) -> int:
    model = ScoreModel(mentors, mentees, SETTINGS, ())
    ok = model.admissible(np.arange(len(mentees)))
    places = np.repeat(np.arange(len(mentors)), [m.capacity for m in mentors])
    graph = sp.csr_array(ok[:, places].astype(np.int8))
    return int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())


@pytest.mark.parametrize(
    "seed, settings", [(1, SETTINGS), (2, SETTINGS), (1, SPARSE), (2, SPARSE), (3, SPARSE)]
)
def test_matched_count_is_the_maximum_the_hard_rules_allow(
    seed: int, settings: MatchSettings
) -> None:
    mentors, mentees = crowded_cohort(seed, 3000, 1000)
    result = match(mentors, mentees, settings)
    assert result.summary.matched == most_that_can_be_matched(mentors, mentees)


@pytest.mark.parametrize("settings", [SETTINGS, SPARSE])
def test_no_unmatched_mentee_has_a_suitable_mentor_with_room(settings: MatchSettings) -> None:
    mentors, mentees = crowded_cohort(7, 3000, 960)
    result = match(mentors, mentees, settings)
    load: dict[str, int] = {}
    for p in result.proposals:
        load[p.mentor_email] = load.get(p.mentor_email, 0) + 1
    model = ScoreModel(mentors, mentees, SETTINGS, ())
    index = {e.email: i for i, e in enumerate(mentees)}
    free = np.array([load.get(m.email, 0) < m.capacity for m in mentors])
    assert result.unmatched, "the cohort is meant to be too tight for everyone"
    for lost in result.unmatched:
        suitable = model.admissible(np.array([index[lost.mentee_email]]))[0]
        assert not (suitable & free).any(), lost
        if suitable.any():
            assert lost.reason.endswith(
                "full and every way of freeing a place leaves another mentee out"
            )


def test_a_mentee_is_moved_to_make_room() -> None:
    # Ana can mentor both Ben and Cy (English); Dee only Ben (Spanish). Scores make
    # Ben's favourite Ana, but then Cy has nobody: the maximum moves Ben to Dee.
    mentors = [
        mentor("ana@x.org", capacity=1, languages=("English", "Spanish"), interests=("a",)),
        mentor("dee@x.org", capacity=1, languages=("Spanish",)),
    ]
    mentees = [
        mentee("ben@x.org", languages=("Spanish",), interests=("a",)),
        mentee("cy@x.org", languages=("English",)),
    ]
    result = match(mentors, mentees, SETTINGS)
    pairs = {p.mentee_email: p.mentor_email for p in result.proposals}
    assert pairs == {"ben@x.org": "dee@x.org", "cy@x.org": "ana@x.org"}


@pytest.mark.slow
def test_at_30000_by_10000_no_unmatched_mentee_has_a_suitable_mentor_with_room() -> None:
    # Issue 18's scale and shape: 10,000 mentors with 3 places, 30,000 mentees. 600 of
    # the mentees are late joiners who ask for a woman mentor, and only 20 mentors are
    # women: that corner overflows while mentors elsewhere keep free places, none of
    # which a left-out mentee may be able to take.
    mentors, mentees = crowded_cohort(18, 29400, 9980)
    mentors += [
        mentor(f"w{i}@x.org", capacity=3, gender="woman", languages=("English", "Hindi"))
        for i in range(20)
    ]
    mentees += [
        mentee(f"late{i}@x.org", gender="woman", prefer_same_gender=True, organisation="late")
        for i in range(600)
    ]
    result = match(mentors, mentees, SETTINGS)
    assert len(result.unmatched) >= 600 - 20 * 3
    load: dict[str, int] = {}
    for p in result.proposals:
        load[p.mentor_email] = load.get(p.mentor_email, 0) + 1
    with_room = [m for m in mentors if load.get(m.email, 0) < m.capacity]
    assert with_room, "mentors elsewhere keep free places"
    by_email = {e.email: e for e in mentees}
    for lost in result.unmatched:
        mentee_ = by_email[lost.mentee_email]
        # The rules written out by hand (matching_cohorts.allowed), not the scorer.
        assert not any(allowed(m, mentee_, SETTINGS, set()) for m in with_room), lost
        assert lost.reason == (
            "the 20 suitable mentors are full and every way of freeing a place leaves"
            " another mentee out"
        ), lost


def test_candidate_lists_scored_by_rule_class_are_each_mentees_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Six languages and five time zones: blocks are scored against a fraction of the
    # mentors. Each list must still be the exact head of the mentee's own order over
    # all mentors (score, then file position), as scoring every pair gives it. Classes
    # this small would share wide blocks; SMALL_BLOCK = 0 keeps each on its own.
    monkeypatch.setattr(candidates, "SMALL_BLOCK", 0)
    mentors, mentees = crowded_cohort(5, 3000, 1000)
    model = ScoreModel(mentors, mentees, SETTINGS, ())
    assert any(cols is not None and cols.size < 500 for _, cols in _scan(model))
    cand = collect_candidates(model)
    everything = model.block(np.arange(len(mentees)))
    k = SETTINGS.candidates_per_mentee
    for u in range(len(mentees)):
        best = preference_order(everything[u])[:k]
        assert cand.mentors[u][: best.size].tolist() == best.tolist(), u
        assert cand.admissible[u] == np.count_nonzero(everything[u] >= 0)
