"""Reading a text as Latin-1 bytes: the folding and the digits it gives are the exact ones.

Mail is mostly Latin-1 with a few curly quotes, dashes or emoji; the
detectors read it as bytes and treat the other characters one by one
(relay.rules.detectors.latin1). Generated texts with such characters few
and many must fold as ``str.translate`` folds them and tell their digits as
"\\d" does.
"""

from __future__ import annotations

import re
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.rules.detectors import contacts
from relay.rules.detectors.digits import Digits
from relay.rules.detectors.latin1 import as_latin1
from relay.rules.detectors.text import _SKELETON, PhraseMatcher, _fold

# Latin-1 letters, one that folds beyond Latin-1 (µ -> μ), and others: quotes,
# dashes, Cyrillic look-alikes, Arabic-Indic and full-width digits, an emoji.
_OTHERS = "’“—…Жжоа٣۵１😀\u200b"
_TEXT = st.lists(
    st.one_of(
        st.text("ab? 0é9µ" + _OTHERS, max_size=8),
        st.integers(0, 300).map(lambda n: "plain latin text? " * (n // 16)),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_the_others_are_listed_exactly_or_not_at_all(text: str) -> None:
    view = as_latin1(text)
    assert len(view.raw) == len(text)
    beyond = tuple(i for i, char in enumerate(text) if ord(char) > 0xFF)
    assert view.others in (beyond, None)
    assert view.others is not None or len(beyond) * 32 > len(text)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_folding_is_the_translation_table_s(text: str) -> None:
    assert _fold(text) == text.translate(_SKELETON)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT)
def test_digits_are_what_backslash_d_matches(text: str) -> None:
    found = Digits.of(text)
    digits = {m.start() for m in re.finditer(r"\d", text)}
    assert {i for i, mark in enumerate(found.marks) if mark == ord("1")} == digits
    if found.ascii_only:
        assert all("0" <= text[i] <= "9" for i in digits)
        wide, narrow = contacts._PHONE_CANDIDATE, contacts._PHONE_CANDIDATE_NARROW
        assert [m.span() for m in narrow.finditer(text)] == [m.span() for m in wide.finditer(text)]


def test_a_remembered_reading_is_never_another_text_s() -> None:
    """Threads and texts alternate; each search reads its own text."""
    matcher = PhraseMatcher(["whatsapp", "telegram"])
    texts = {"on WhatsApp — ok": ["whatsapp"], "telegram’s fine": ["telegram"], "none": []}
    failures: list[str] = []

    def search() -> None:
        for _ in range(200):
            for text, expected in texts.items():
                copy = "".join(list(text))  # an equal text that is another object
                for each in (text, copy):
                    if [phrase for _, _, phrase in matcher.finditer(each)] != expected:
                        failures.append(each)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
