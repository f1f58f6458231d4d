"""Reading offer replies leniently, and never guessing (relay.offers.answers)."""

from __future__ import annotations

import pytest

from relay.offers.answers import chosen_ranks, yes_or_no


@pytest.mark.parametrize(
    ("text", "ranks"),
    [
        ("2", [2]),
        ("Option 2", [2]),
        ("option 2 please!", [2]),
        ("I'd like number 3.", [3]),
        ("2, then 1", [2, 1]),
        ("3 or 1 or 3", [3, 1]),
        ("Hi,\n\n1\n\n-- \nLea, 07700 900123", [1]),  # the signature is not read
        (
            "2\n\nOn Mon, 7 Dec 2026 at 10:15, Bridges Mentoring <offer-1-ab@relay\n.test> wrote:",
            [2],
        ),
        ("I'd like the second one", None),  # words: asked for a number
        ("12", None),  # not in the letter
        ("2 or 5", None),
        ("", None),
        ("Let's talk at 10:30", None),
    ],
)
def test_a_mentee_names_mentors_by_number(text: str, ranks: list[int] | None) -> None:
    assert chosen_ranks(text, range(1, 4)) == ranks


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("yes", True),
        ("Yes, happy to!", True),
        ("OK", True),
        ("No", False),
        ("Sorry, I can't this term", False),
        ("no - yes next year", False),
        ("Maybe?", None),
        ("", None),
    ],
)
def test_a_mentor_says_yes_or_no(text: str, said: bool | None) -> None:
    assert yes_or_no(text) is said
