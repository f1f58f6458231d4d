"""Text the detectors share: ``Found``, folding, phrase matching, scanning helpers.

Folding sees through case, accents, spacing and look-alike characters, so a
phrase list matches "d0n't t3ll" as well as "don't tell". The scanning
helpers keep offsets into the original text, so a hit's span always points at
what the sender wrote.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from relay.rules.detectors.latin1 import as_latin1


class Found(NamedTuple):
    start: int
    end: int
    reason: str
    detail: str = ""


# --- phrases, seen through obfuscation -----------------------------------------

# Look-alikes read as the letter they imitate. The map is applied to the text
# and to the phrases alike, so merging "l" into "i" (both written "1") costs
# nothing but an occasional extra match.
_LEET = {"@": "a", "4": "a", "8": "b", "3": "e", "€": "e", "9": "g", "1": "i", "!": "i",
         "|": "i", "l": "i", "0": "o", "$": "s", "5": "s", "7": "t", "+": "t"}  # fmt: skip
# Cyrillic and Greek letters that look Latin are a cheap disguise.
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ο": "o",
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
}  # fmt: skip
_SEP = " "


def _skeleton_table() -> dict[int, str]:
    """One character in, one out: case, accents and look-alikes folded, the rest a gap."""
    table: dict[int, str] = {}
    ranges = [range(0x250), range(0x300, 0x370), range(0x1E00, 0x1F00), range(0x2000, 0x2070)]
    ranges.append(range(0xFF01, 0xFF5F))  # full-width forms
    for cp in (cp for r in ranges for cp in r):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        base = base.lower()
        if len(base) == 1 and base.isalnum():
            table[cp] = _LEET.get(base, base)
        elif ch in _LEET:
            table[cp] = _LEET[ch]
        elif not ch.isalnum():
            table[cp] = _SEP
    for ch, latin in _HOMOGLYPHS.items():
        table[ord(ch)] = table[ord(ch.upper())] = latin
    return table


_SKELETON = _skeleton_table()


def _latin1_table() -> tuple[bytes, bytes]:
    """_SKELETON as a bytes table, and the Latin-1 bytes it cannot fold one to one."""
    table, unfit = bytearray(range(256)), bytearray()
    for cp in range(256):
        out = _SKELETON.get(cp, chr(cp))
        if ord(out) < 256:
            table[cp] = ord(out)
        else:
            unfit.append(cp)
    return bytes(table), bytes(unfit)


_SKELETON_LATIN1, _SKELETON_UNFIT = _latin1_table()


def _fold(text: str) -> str:
    """``text.translate(_SKELETON)``, through bytes when it can (several times faster)."""
    # str.translate looks every character up in a dict once the text is not
    # pure ASCII (a single "£" or "é" is enough); bytes.translate does not. The
    # few characters beyond Latin-1 (quotes, dashes) are folded one by one.
    view = as_latin1(text)
    if view.others is None or any(b in view.raw for b in _SKELETON_UNFIT):
        return text.translate(_SKELETON)
    folded = view.raw.translate(_SKELETON_LATIN1).decode("latin-1")
    if not view.others:
        return folded
    pieces: list[str] = []
    last = 0
    for at in view.others:
        pieces += (folded[last:at], _SKELETON.get(ord(text[at]), text[at]))
        last = at + 1
    pieces.append(folded[last:])
    return "".join(pieces)


_recent = threading.local()
# A message's subject, text parts and file names: the rules go over them one
# rule after another (messenger names, keywords, safeguarding phrases).
_RECENT_TEXTS = 4


def _folded(text: str) -> tuple[str, str]:
    """``text`` folded, and folded without its gaps: PhraseMatcher's reading of it.

    The last few texts each thread folded are remembered, by identity (the
    entry holds the text, so its id cannot be reused meanwhile): the messenger
    names, the keywords and the safeguarding phrases are all looked for in the
    same texts, one rule at a time.
    """
    recent: list[tuple[str, tuple[str, str]]] | None = getattr(_recent, "texts", None)
    if recent is None:
        recent = _recent.texts = []
    for seen, found in recent:
        if seen is text:
            return found
    folded = _fold(text)
    found = (folded, folded.replace(_SEP, ""))
    recent.append((text, found))
    if len(recent) > _RECENT_TEXTS:
        del recent[0]
    return found


def normalise_phrase(phrase: str) -> str:
    """The letters of a phrase as the matcher compares them (no gaps, folded)."""
    return phrase.translate(_SKELETON).replace(_SEP, "")


_NOT_GAP = re.compile("[^ ]")


def _skip_gaps(folded: str, count: int, pos: int) -> int:
    """The offset of the non-gap character ``count`` non-gap characters after ``pos``.

    ``pos`` must itself be a non-gap character (or ``count`` be zero and one
    follow); the answer is the first non-gap at or after the stepped offset.
    """
    while True:
        m = _NOT_GAP.search(folded, pos)
        assert m is not None  # callers only ask for letters the compact text has
        pos = m.start()
        if count == 0:
            return pos
        end = pos + count
        count = folded.count(_SEP, pos, end)
        pos = end


# Up to this many phrases, PhraseMatcher finds each with str.find; beyond, one
# pass of the longest_of pattern is cheaper (95 phrases: about 60 finds on prose).
_FIND_EACH_UP_TO = 24
# Below this many letters the pattern is searched once first, whatever the phrases.
_SHORT = 256


def longest_of(keys: Iterable[str]) -> str:
    """A pattern matching, at any offset, the longest of ``keys`` that starts there.

    What the alternation of the keys, longest first, matches; but written as a
    tree of their common prefixes ("he(?:hit(?:s)?me|beatsme)"), so sre
    compares one character per branch at each step instead of trying every
    key at every offset (a hundred phrases over 50 KB of prose: several ms).
    A longer key is tried before the shorter one it extends (greedy "?").
    """
    tree: dict[str, dict[str, Any]] = {}
    for key in keys:
        node = tree
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}  # a key ends here

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in node.items() if char]
        if "" in node:
            return f"(?:{'|'.join(branches)})?" if branches else ""
        return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"

    return pattern(tree)


class PhraseMatcher:
    """Finds any of a list of phrases, however they are spaced or disguised.

    Text and phrases are both folded one character to one (case, accents,
    look-alikes such as "0" for "o" or "$" for "s"), the gaps are dropped, and
    the phrases are searched for in what is left, so "w h a t s a p p",
    "Wh@ts-App" and "whatsapp" all match "WhatsApp". A match maps back to the
    original text; it must start and end on a word boundary there (so "sex"
    does not match "Essex", nor "meet up" "meet Upton") and may not spread
    over more than three gap characters between letters.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: dict[str, str] = {}
        for phrase in phrases:
            key = normalise_phrase(phrase)
            if key:
                self._phrases.setdefault(key, phrase.strip())
        ordered = sorted(self._phrases, key=len, reverse=True)
        self._ordered = tuple(ordered)
        self._regex = re.compile(longest_of(ordered)) if ordered else None

    def _searcher(self, compact: str) -> Callable[[int], tuple[int, str] | None]:
        """``self._regex.search(compact, pos)`` as (start, phrase key), or None.

        For a few phrases, one str.find per phrase (remembering where each
        was next seen) beats sre, which tries the alternation at every
        letter; it picks the same match: leftmost, then first in order.
        """
        regex = self._regex
        if regex is None or len(self._ordered) > _FIND_EACH_UP_TO:

            def by_regex(pos: int) -> tuple[int, str] | None:
                m = regex.search(compact, pos) if regex is not None else None
                return None if m is None else (m.start(), m.group())

            return by_regex
        seen = {key: compact.find(key) for key in self._ordered}

        def by_find(pos: int) -> tuple[int, str] | None:
            best: tuple[int, str] | None = None
            for key, at in seen.items():
                if 0 <= at < pos:
                    at = seen[key] = compact.find(key, pos)
                if at >= 0 and (best is None or at < best[0]):
                    best = (at, key)
            return best

        return by_find

    def __bool__(self) -> bool:
        return self._regex is not None

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, configured phrase) for each match in ``text``."""
        if self._regex is None:
            return
        folded, compact = _folded(text)
        if len(compact) < _SHORT and self._regex.search(compact) is None:
            return  # a subject, a file name: one search costs less than setting up finds
        search = self._searcher(compact)
        m = search(0)
        if m is None:
            return  # the common case: no index of the gaps is ever built
        # Map compact offsets back by counting gaps from the last match on,
        # not by indexing every word of the text: matches are few, words many.
        anchor = (0, 0)  # (compact offset, its offset in text); starts only grow
        while m is not None:
            at, key = m
            start = _skip_gaps(folded, at - anchor[0], anchor[1])
            anchor = (at, start)
            end = _skip_gaps(folded, len(key) - 1, start) + 1
            bounded = (start == 0 or not text[start - 1].isalnum()) and (
                end == len(text) or not text[end].isalnum()
            )
            if bounded and end - start <= 4 * len(key) - 3:
                yield start, end, self._phrases[key]
                m = search(at + len(key))
            else:
                m = search(at + 1)


# --- contact details -----------------------------------------------------------
#


def lower_keeping_offsets(text: str) -> str:
    """``text`` in lower case, one character for one, so offsets still match."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


_SPACE = re.compile(r"\s")


def positions(text: str, needle: str) -> Iterator[int]:
    i = text.find(needle)
    while i >= 0:
        yield i
        i = text.find(needle, i + 1)


def finditer_near(
    pattern: re.Pattern[str], text: str, anchors: Iterable[int]
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, for a pattern whose matches hold no white space
    and always cover one of the ``anchors`` (ascending offsets).

    Only the words (runs without white space) around the anchors are searched,
    each one with the white space after it, so lookarounds see what they would
    in the whole text: a pattern that can start on any letter otherwise tries
    every letter of a long message.
    """
    done = 0  # the white space that ended the last word searched
    for p in anchors:
        if p < done:
            continue
        start = p
        while start > done and not text[start - 1].isspace():
            start -= 1
        space = _SPACE.search(text, p)
        done = space.start() if space else len(text)
        yield from pattern.finditer(text, start, done + 1)


def word_start(text: str, i: int) -> bool:
    return i == 0 or not text[i - 1].isalnum()
