"""matching.offers: the best few mentors per mentee, one place reserved per offer."""

from __future__ import annotations

from collections import Counter

import pytest

from matching.offers import make_offers
from matching.score import combined_score
from matching.settings import MatchSettings
from tests.matching.matching_cohorts import allowed, mentee, mentor, random_cohort


def test_candidates_are_the_best_suitable_mentors_best_first_with_reasons() -> None:
    settings = MatchSettings()
    mentors = [
        mentor("ana@m.org", field="Civil", interests=("bridges", "concrete"), capacity=1),
        mentor("raj@m.org", field="Civil", interests=("bridges",), capacity=1),
        mentor("mei@m.org", field="Software", interests=("concrete",), capacity=1),
        mentor("far@m.org", field="Civil", time_zone="Asia/Tokyo", capacity=5),  # 9 h away
        mentor("same@m.org", field="Civil", organisation="Hill", capacity=5),  # her school
    ]
    lea = mentee("lea@s.net", field="Civil", interests=("bridges", "concrete"), organisation="Hill")
    (offer,) = make_offers(mentors, [lea], settings, choices=3).offers
    assert [c.mentor.email for c in offer.candidates] == ["ana@m.org", "raj@m.org", "mei@m.org"]
    scores = [c.score for c in offer.candidates]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(combined_score(mentors[0], lea, settings))
    assert offer.candidates[0].reasons[0] == "both in Civil"
    assert [c.reserved for c in offer.candidates] == [True, False, False]


def test_every_offer_of_a_round_can_end_in_a_pair_at_once() -> None:
    """The reserved mentors form a matching within the places given: maximum coverage."""
    settings = MatchSettings()
    mentors, mentees = random_cohort(seed=7, n_mentors=40, n_mentees=90)
    result = make_offers(mentors, mentees, settings, choices=3)
    capacity = {m.email: m.capacity for m in mentors}
    reserved = Counter()
    by_email = {m.email: m for m in mentors}
    for offer in result.offers:
        held = [c for c in offer.candidates if c.reserved]
        assert len(held) == 1 and 1 <= len(offer.candidates) <= 3
        reserved[held[0].mentor.email] += 1
        assert len({c.mentor.email for c in offer.candidates}) == len(offer.candidates)
        for candidate in offer.candidates:
            assert candidate.mentor.capacity > 0
            assert allowed(by_email[candidate.mentor.email], offer.mentee, settings, set())
    assert all(reserved[email] <= capacity[email] for email in reserved)
    assert len(result.offers) + len(result.unmatched) == len(mentees)


def test_excluded_pairs_and_mentors_without_places_are_never_offered() -> None:
    mentors = [mentor("ana@m.org", capacity=0), mentor("raj@m.org"), mentor("mei@m.org")]
    lea = mentee("lea@s.net")
    (offer,) = make_offers(
        mentors, [lea], MatchSettings(), choices=3, exclude={("raj@m.org", "lea@s.net")}
    ).offers
    assert [c.mentor.email for c in offer.candidates] == ["mei@m.org"]


def test_no_offer_without_a_suitable_mentor_and_the_reason_says_why() -> None:
    mentors = [mentor("ana@m.org", languages=("French",))]
    result = make_offers(mentors, [mentee("lea@s.net")], MatchSettings())
    assert result.offers == ()
    assert "language" in result.unmatched[0].reason


def test_choices_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="choices must be from 1 to 10"):
        make_offers([], [], MatchSettings(), choices=0)
