"""PhraseMatcher's prefix-tree pattern matches what the plain alternation matched.

The keyword and safeguarding rules search a text's folded letters for their
phrases with one pattern (relay.rules.detectors.text.longest_of): a tree of
the phrases' common prefixes instead of "phrase|phrase|...", longest first.
At every offset both must find the same phrase at the same place.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.rules.detectors.text import (
    _FIND_EACH_UP_TO,
    PhraseMatcher,
    longest_of,
    normalise_phrase,
)
from relay.rules.safeguarding import shipped_families

SHIPPED = sorted(
    {normalise_phrase(p) for each in shipped_families().values() for p in each} - {""},
    key=len,
    reverse=True,
)


def alternation(keys: list[str]) -> re.Pattern[str]:
    """The pattern PhraseMatcher used before: every key, longest first."""
    return re.compile("|".join(map(re.escape, sorted(keys, key=len, reverse=True))))


def every_search(pattern: re.Pattern[str], text: str) -> list[tuple[int, str] | None]:
    found = (pattern.search(text, pos) for pos in range(len(text) + 1))
    return [None if m is None else (m.start(), m.group()) for m in found]


@settings(max_examples=400)
@given(
    keys=st.lists(st.text("abc.", min_size=1, max_size=5), min_size=1, max_size=12),
    text=st.text("abc.x", max_size=40),
)
def test_the_tree_finds_what_the_alternation_finds(keys: list[str], text: str) -> None:
    assert every_search(re.compile(longest_of(keys)), text) == every_search(alternation(keys), text)


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(SHIPPED).map(lambda p: p[: len(p) // 2 + 1]),
            st.sampled_from(SHIPPED),
            st.text("abdehimnorstuy", max_size=4),
        ),
        max_size=12,
    )
)
def test_the_shipped_phrases_are_found_as_before(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert every_search(re.compile(longest_of(SHIPPED)), text) == every_search(
        alternation(SHIPPED), text
    )


def test_the_longer_of_two_phrases_wins_and_both_are_found() -> None:
    phrases = ["hit me", "he hit me", "hits", "dont tell", "dont tell your mum"]
    # Enough phrases for the one-pattern search (fewer are found one by one).
    unused = [f"zq{letter}zq" for letter in "abcdefghijklmnopqrstuvwxyz"]
    assert len(phrases + unused) > _FIND_EACH_UP_TO
    matcher = PhraseMatcher(phrases + unused)
    text = "He hit me. Don't tell your MUM. It hits hard; dont tell."
    assert [phrase for _, _, phrase in matcher.finditer(text)] == [
        "he hit me",
        "dont tell your mum",
        "hits",
        "dont tell",
    ]
