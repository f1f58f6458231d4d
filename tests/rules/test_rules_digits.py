"""Searching next to digits only: the same matches as the full patterns, always.

The contact detector searches phone numbers and UK postcodes only in windows
around a text's digits, and US ZIP codes only at the runs of five digits
(relay.rules.detectors.digits). These tests generate texts full of near
misses and compare with the plain ``pattern.finditer``, with the windows
forced on (every text sparse), forced off, and as tuned.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.rules.detectors import contacts
from relay.rules.detectors.contacts import find_contacts
from relay.rules.detectors.digits import Digits, finditer_windows, match_at
from relay.rules.detectors.kinds import PHONE, POSTAL

# Pieces of what the patterns look for, and of what they must refuse.
_PIECES = [
    "SW1A 1AA", "M1 1AE", "EC1A1BB", "B33 8TH", "W1 2PM", "CR2 6XH", "1AM", "9PM",
    "CA 94105", "NY\t\t10001-1234", "TX  75001", "DC 20500-0003", "CA 941050",
    "+44 7700 900123", "(555) 123-4567", "07700 900 123", "10:30", "555.123.4567",
    "٣٤٥ ٦٧٨ ٩٠١٢", "06 12 34 56 78", "ISBN 978-3-16-148410-0", "2024-05-01",
    "221B Baker Street", "12 Main St.",
]  # fmt: skip
_ALPHABET = "0123456789 \t\n\u00a0\u2009\u2010ABMPSTWXamx+().-:/,@#%&=?é’٣۵"
_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_PIECES),
        st.text(_ALPHABET, max_size=12),
        st.integers(0, 400).map(lambda n: "x" * n),
        # A phone candidate may run to 42 characters, its digits far from its start.
        st.tuples(
            st.sampled_from("+(0"),
            st.text(" ().-\u00a0", min_size=28, max_size=42),
            st.sampled_from(["1", "12", "9/", "5@", "4.5"]),
        ).map("".join),
    ),
    max_size=20,
).map("".join)
# Digits.of(text, sparse, gap): a text with more than one digit per `sparse`
# characters is searched whole, so 1 always uses windows and 1 << 30 never does.
_TUNINGS = {"windows": (1, 0), "whole": (1 << 30, 64), "tuned": (256, 64)}
TUNING = pytest.mark.parametrize("tuning", sorted(_TUNINGS))


def spans(found: object) -> list[tuple[int, int]]:
    assert not isinstance(found, str)
    return [m.span() for m in found]  # type: ignore[attr-defined]


def windowed_phones(
    text: str, pattern: re.Pattern[str], tuning: tuple[int, int]
) -> list[tuple[int, int]]:
    windows = Digits.of(text, *tuning).windows(*contacts._PHONE_WINDOW)
    return spans(finditer_windows(pattern, text, windows, contacts._PHONE_REACH))


def postcodes(text: str, tuning: tuple[int, int]) -> list[tuple[int, int]]:
    starts = contacts._postcode_starts(Digits.of(text, *tuning))
    return spans(match_at(contacts._UK_POSTCODE, text, starts))


def zip_codes(text: str, tuning: tuple[int, int]) -> list[tuple[int, int]]:
    starts = contacts._zip_starts(text, Digits.of(text, *tuning))
    return spans(match_at(contacts._US_ZIP, text, starts))


@TUNING
@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_windows_find_exactly_what_the_full_patterns_find(tuning: str, text: str) -> None:
    tuned = _TUNINGS[tuning]
    for phones in (contacts._PHONE_CANDIDATE, contacts._PHONE_CANDIDATE_NARROW):
        assert windowed_phones(text, phones, tuned) == spans(phones.finditer(text))
    assert postcodes(text, tuned) == spans(contacts._UK_POSTCODE.finditer(text))
    assert zip_codes(text, tuned) == spans(contacts._US_ZIP.finditer(text))


# Texts at the edges of the windows: the longest phone candidate, whose only
# digit is its last character; an attempt that must read 44 characters (its
# lookahead refuses "9.5", so the match is the 7 digits alone); a postcode whose
# first digit is its third character; blanks before a ZIP code.
EDGES = [
    "x (" + " " * 40 + "1 y",
    "+" + "-" * 40 + "7",
    "1234567" + " " * 34 + "9.5",
    "1234567" + " " * 34 + "9 5",
    "SW1A 1AA",
    "the code EC1A 1BB.",
    "NY" + " \t" * 30 + "10001-1234",
    "CA 94105 and CA 941050 and CA 9410",
]


@TUNING
@pytest.mark.parametrize("text", EDGES)
def test_windows_at_their_edges(tuning: str, text: str) -> None:
    tuned = _TUNINGS[tuning]
    for phones in (contacts._PHONE_CANDIDATE, contacts._PHONE_CANDIDATE_NARROW):
        assert windowed_phones(text, phones, tuned) == spans(phones.finditer(text))
    assert postcodes(text, tuned) == spans(contacts._UK_POSTCODE.finditer(text))
    assert zip_codes(text, tuned) == spans(contacts._US_ZIP.finditer(text))


@TUNING
@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
def test_every_digit_is_inside_a_stretch(tuning: str, text: str) -> None:
    found = Digits.of(text, *_TUNINGS[tuning])
    for i, char in enumerate(text):
        if re.fullmatch(r"\d", char):
            assert any(start <= i < end for start, end in found.stretches), (i, char)
    assert bool(found) == bool(re.search(r"\d", text))


def test_marks_read_digits_as_the_patterns_do() -> None:
    """ "\\d" in a str pattern is str.isdecimal(), which is what marks a digit."""
    every = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    marks = Digits.of(every).marks
    regex = {m.start() for m in re.finditer(r"\d", every)}
    assert {i for i, mark in enumerate(marks) if mark == ord("1")} == regex


def test_details_far_apart_in_a_long_letter_are_all_found() -> None:
    """A long message with a few digits is searched in windows; nothing is missed."""
    filler = "We talked about revision plans and what helps before exams. " * 60
    text = (
        filler
        + "Post it to SW1A 1AA please. "
        + filler
        + "or ring +44 7700 900123 after six. "
        + filler
        + "The office is in Sacramento, CA 94105-1234 now."
        + filler
    )
    assert len(text) > 256 * 30  # sparse: fewer digits than one per 256 characters
    found = {(text[f.start : f.end], f.reason) for f in find_contacts(text)}
    assert ("SW1A 1AA", POSTAL) in found
    assert ("+44 7700 900123", PHONE) in found
    assert ("CA 94105-1234", POSTAL) in found
