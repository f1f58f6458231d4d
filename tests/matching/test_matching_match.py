from __future__ import annotations

import numpy as np
import pytest
from matching_cohorts import allowed, brute_blocking, mentee, mentor, random_cohort
from scipy.optimize import linear_sum_assignment

from matching.match import match
from matching.profiles import Mentee, Mentor
from matching.score import combined_score
from matching.settings import MatchSettings

SETTINGS = MatchSettings()


def hand_cohort() -> tuple[list[Mentor], list[Mentee]]:
    mentors = [
        mentor(
            "ana@x.org",
            field="Civil Engineering",
            interests=("bridges", "concrete"),
            languages=("Spanish", "English"),
            time_zone="Europe/Madrid",
            organisation="Acme",
        ),
        mentor(
            "bo@x.org",
            field="Software",
            interests=("python",),
            languages=("English",),
            time_zone="America/New_York",
            organisation="Beta",
            capacity=2,
        ),
        mentor(
            "cy@x.org",
            field="Civil Engineering",
            languages=("French",),
            time_zone="Asia/Tokyo",
            gender="woman",
            prefer_same_gender=True,
        ),
    ]
    mentees = [
        mentee(
            "xi@x.org",
            field="civil engineering",
            interests=("Bridges",),
            languages=("Spanish",),
            time_zone="Europe/Madrid",
            organisation="Gamma",
        ),
        mentee(
            "yu@x.org",
            field="Software",
            interests=("python",),
            languages=("English",),
            time_zone="America/New_York",
            organisation="Beta",
        ),
        mentee("zo@x.org", languages=("Swahili",)),
        mentee(
            "wa@x.org",
            field="Software",
            interests=("python",),
            languages=("English",),
            time_zone="America/Chicago",
        ),
        mentee("vi@x.org", languages=("French",), time_zone="Asia/Tokyo", gender="man"),
    ]
    return mentors, mentees


def test_hand_cohort_pairs_reasons_and_unmatched() -> None:
    mentors, mentees = hand_cohort()
    result = match(mentors, mentees, SETTINGS)
    pairs = {p.mentee_email: p.mentor_email for p in result.proposals}
    # yu works at Beta like bo, so bo goes to wa; yu gets ana (English, 6 h apart).
    assert pairs == {"xi@x.org": "ana@x.org", "wa@x.org": "bo@x.org", "yu@x.org": "bo@x.org"} or (
        pairs == {"xi@x.org": "ana@x.org", "wa@x.org": "bo@x.org"}
    )
    xi = next(p for p in result.proposals if p.mentee_email == "xi@x.org")
    assert xi.reasons == (
        "both in civil engineering",
        "both interested in Bridges",
        "share Spanish",
    )
    assert xi.rank == 1 and 0 < xi.score <= 1
    why = {u.mentee_email: u.reason for u in result.unmatched}
    assert why["zo@x.org"] == "no mentor shares a language"
    assert why["vi@x.org"] == "no otherwise suitable mentor meets the same-gender request"
    assert result.summary.matched + result.summary.unmatched == len(mentees)


def test_organisation_rule_and_full_mentors() -> None:
    mentors = [mentor("bo@x.org", organisation="Beta"), mentor("al@x.org")]
    mentees = [mentee("yu@x.org", organisation="beta"), mentee("wa@x.org"), mentee("vo@x.org")]
    result = match(mentors, mentees, SETTINGS)
    assert all(
        not (p.mentee_email == "yu@x.org" and p.mentor_email == "bo@x.org")
        for p in result.proposals
    )
    assert result.summary.matched == 2
    (lost,) = result.unmatched
    assert lost.reason.startswith("the only suitable mentor is full and every way")


def test_time_zone_limit_and_explanation_of_distance() -> None:
    mentors = [mentor("far@x.org", time_zone="Asia/Tokyo"), mentor("near@x.org", time_zone="UTC+2")]
    mentees = [mentee("me@x.org", time_zone="UTC")]
    result = match(mentors, mentees, MatchSettings.from_mapping({"max_time_zone_hours": 3}))
    (p,) = result.proposals
    assert p.mentor_email == "near@x.org"
    assert "2 h apart" in p.reasons
    alone = match(mentors[:1], mentees, MatchSettings.from_mapping({"max_time_zone_hours": 3}))
    assert alone.unmatched[0].reason == "no mentor who shares a language is within 3 h"


def test_excluded_pairs_are_never_proposed() -> None:
    mentors = [mentor("a@x.org")]
    mentees = [mentee("b@x.org")]
    result = match(mentors, mentees, SETTINGS, exclude={("A@x.org", "b@x.org")})
    assert not result.proposals
    assert result.unmatched[0].reason == (
        "every otherwise suitable mentor is already or was paired with this mentee"
    )


def test_mandatory_field_is_a_hard_filter() -> None:
    mentors = [mentor("a@x.org", field="Law"), mentor("b@x.org", field="Art")]
    mentees = [mentee("c@x.org", field="art"), mentee("d@x.org", field="Music")]
    s = MatchSettings.from_mapping({"weights": {"field": "mandatory"}})
    result = match(mentors, mentees, s)
    assert [(p.mentee_email, p.mentor_email) for p in result.proposals] == [("c@x.org", "b@x.org")]
    assert "same field" in result.unmatched[0].reason


def exact_total(
    mentors: list[Mentor], mentees: list[Mentee], s: MatchSettings
) -> tuple[int, float]:
    columns = [m for m in mentors for _ in range(m.capacity)]
    score = np.array(
        [
            [combined_score(m, e, s) if allowed(m, e, s, set()) else -1.0 for m in columns]
            for e in mentees
        ]
    )
    cost = np.where(score >= 0, -score, 1e6)
    rows, cols = linear_sum_assignment(cost)
    real = score[rows, cols] >= 0
    return int(real.sum()), float(score[rows, cols][real].sum())


@pytest.mark.parametrize("seed", range(6))
def test_properties_on_random_cohorts(seed: int) -> None:
    mentors, mentees = random_cohort(seed)
    # Short lists force the rescans and the repair round to do their part.
    s = MatchSettings(candidates_per_mentee=2, candidates_per_mentor=2)
    by_email = {p.email: p for p in [*mentors, *mentees]}
    results = {
        method: match(mentors, mentees, s, method=method) for method in ("optimal", "stable")
    }
    for result in results.values():
        load: dict[str, int] = {}
        for p in result.proposals:
            m, e = by_email[p.mentor_email], by_email[p.mentee_email]
            assert isinstance(m, Mentor) and isinstance(e, Mentee)
            assert allowed(m, e, s, set())
            assert p.score == pytest.approx(combined_score(m, e, s))
            load[m.email] = load.get(m.email, 0) + 1
        assert all(load[m.email] <= m.capacity for m in mentors if m.email in load)
        pairs = {p.mentee_email: p.mentor_email for p in result.proposals}
        assert result.summary.blocking_pairs == brute_blocking(mentors, mentees, pairs, s)
    assert results["stable"].summary.blocking_pairs == 0
    # With lists long enough to hold every mentor the optimal method is exact, and so
    # never worse than stable.
    optimal = match(mentors, mentees, MatchSettings(candidates_per_mentee=50)).summary
    stable = match(mentors, mentees, SETTINGS, method="stable").summary
    assert stable.blocking_pairs == 0
    matched, total = exact_total(mentors, mentees, s)
    assert optimal.matched == matched
    assert optimal.total_score == pytest.approx(total)
    assert optimal.matched >= stable.matched
    if optimal.matched == stable.matched:
        assert optimal.total_score >= stable.total_score - 1e-9


def test_ranks_count_better_mentors() -> None:
    mentors = [mentor("best@x.org", field="Art"), mentor("next@x.org")]
    mentees = [mentee("a@x.org", field="Art"), mentee("b@x.org", field="Art")]
    result = match(mentors, mentees, SETTINGS)
    ranks = {p.mentee_email: (p.mentor_email, p.rank) for p in result.proposals}
    assert sorted(ranks.values()) == [("best@x.org", 1), ("next@x.org", 2)]


def test_same_input_same_output_and_progress() -> None:
    mentors, mentees = random_cohort(11, n_mentees=60, n_mentors=20)
    calls: list[tuple[int, int]] = []
    first = match(mentors, mentees, SETTINGS, progress=lambda d, t: calls.append((d, t)))
    second = match(list(mentors), list(mentees), SETTINGS)
    assert first == second
    assert calls[-1] == (60, 60)
    assert all(t == 60 and 0 < d <= 60 for d, t in calls)


def test_unknown_method_and_duplicate_people_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        match([], [], SETTINGS, method="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="appears twice"):
        match([mentor("a@x.org"), mentor("a@x.org")], [], SETTINGS)
