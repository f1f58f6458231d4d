"""Where a text's digits are, found once, and patterns searched only near them.

Phone numbers, UK postcodes, US ZIP codes and street numbers all hold a
decimal digit, and most text holds few. ``Digits`` marks every character
in one pass of C code (``str.encode`` and ``bytes.translate``: several times
faster than sre scanning a text for a character class), then finds the
stretches that hold digits with patterns that start with a literal, which
sre skips to fast. ``finditer_windows`` and ``match_at`` give exactly the
matches ``pattern.finditer(text)`` would, trying only offsets where a match
can start; a text without a digit is not searched at all.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from relay.rules.detectors.latin1 import as_latin1

# One byte per character: b"1" a decimal digit (what "\d" matches in a str
# pattern), b" " a space or tab, b"A" a capital A-Z, b"\0" anything else.
# Latin-1 holds no decimal digit but 0-9; the few characters beyond it are
# read one by one (relay.rules.detectors.latin1), many of them by the error
# handler below, called once per run of such characters.
_DIGIT, _BLANK, CAPITAL = b"1", b" ", b"A"
_MARKS = bytes(
    _DIGIT[0] if 0x30 <= byte <= 0x39
    else _BLANK[0] if byte in b" \t"
    else CAPITAL[0] if 0x41 <= byte <= 0x5A
    else 0
    for byte in range(256)
)  # fmt: skip
_CAPITAL_DIGIT = re.compile(re.escape(CAPITAL + _DIGIT))
_ERRORS = "relay-digit-marks"


def _mark_beyond_latin1(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    run = error.object[error.start : error.end]
    # "0" and "\0" stand in for a digit and anything else; _MARKS maps them on.
    return "".join("0" if c.isdecimal() else "\0" for c in run), error.end


codecs.register_error(_ERRORS, _mark_beyond_latin1)

_RUN = re.compile(rb"11*")
# Starting a search costs about as much as scanning a few hundred characters,
# so digits closer than _GAP are searched as one stretch, and a text with more
# than one digit in _SPARSE characters is searched as a whole.
_GAP = 64
_SPARSE = 256


class Digits(NamedTuple):
    """A text's digits: each character's mark, and the stretches that hold digits."""

    marks: bytes
    # (first digit, after the last), ascending; or the whole text when digits are dense
    stretches: tuple[tuple[int, int], ...]
    ascii_only: bool = False  # known to hold no decimal digit but 0-9

    @classmethod
    def of(cls, text: str, sparse: int = _SPARSE, gap: int = _GAP) -> Digits:
        """``sparse`` and ``gap``: see _SPARSE and _GAP (tests set them to both extremes)."""
        view = as_latin1(text)
        decimals = []
        if view.others is None:
            marks = text.encode("latin-1", errors=_ERRORS).translate(_MARKS)
        else:
            marks = view.raw.translate(_MARKS)  # b"?" for each character beyond Latin-1
            decimals = [at for at in view.others if text[at].isdecimal()]
            if decimals:
                marked = bytearray(marks)
                for at in decimals:
                    marked[at] = _DIGIT[0]
                marks = bytes(marked)
        ascii_only = view.others is not None and not decimals
        count = marks.count(_DIGIT)
        if not count:
            return cls(marks, (), ascii_only)
        if count > len(marks) // sparse:
            return cls(marks, ((0, len(marks)),), ascii_only)
        stretches: list[tuple[int, int]] = []
        for m in _RUN.finditer(marks):
            start, end = m.span()
            if stretches and start - stretches[-1][1] <= gap:
                stretches[-1] = (stretches[-1][0], end)
            else:
                stretches.append((start, end))
        return cls(marks, tuple(stretches), ascii_only)

    def __bool__(self) -> bool:
        return bool(self.stretches)

    def windows(self, before: int, after: int) -> Iterator[tuple[int, int]]:
        """(lo, hi) for each stretch: from ``before`` characters ahead of its first
        digit to ``after`` past its last (negative: ahead of it)."""
        for start, end in self.stretches:
            yield max(start - before, 0), end + after

    def capitals_before_digits(self) -> Iterator[int]:
        """The offset of each capital A-Z that a digit follows."""
        for m in _CAPITAL_DIGIT.finditer(self.marks):
            yield m.start()

    def runs_after_blank(self, length: int) -> Iterator[int]:
        """The start of each run of exactly ``length`` digits right after a space or tab."""
        for m in _run_after_blank(length).finditer(self.marks):
            yield m.start() + 1


@functools.cache
def _run_after_blank(length: int) -> re.Pattern[bytes]:
    return re.compile(re.escape(_BLANK + _DIGIT * length) + b"(?!1)")


def finditer_windows(
    pattern: re.Pattern[str], text: str, windows: Iterable[tuple[int, int]], reach: int
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, when every match starts at an offset lo..hi of one
    of the ``windows`` (ascending), and an attempt at offset s reads no
    character at or past s + ``reach`` (the match and what its lookaheads and
    final ``\\b`` look at). The pattern never matches the empty string.

    Each window is searched with pos/endpos: a lookbehind still sees the text
    before pos, and every attempt at an offset up to hi ends its reading
    before endpos, so it goes as it would in the whole text.
    """
    searched_to = 0  # finditer goes on from the end of its last match
    for lo, hi in windows:
        for m in pattern.finditer(text, max(lo, searched_to), hi + reach):
            if m.start() > hi:
                break
            yield m
            searched_to = m.end()


def match_at(pattern: re.Pattern[str], text: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, when every match starts at one of ``starts``
    (ascending; others may be given too). For patterns of unbounded length,
    which cannot be confined to a window; the pattern never matches empty."""
    searched_to = 0
    for start in starts:
        if start < searched_to:
            continue
        m = pattern.match(text, start)
        if m is not None:
            yield m
            searched_to = m.end()
