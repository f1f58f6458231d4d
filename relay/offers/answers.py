"""Reading a participant's answer to an offer: numbers for a mentee, yes or no for a mentor.

Owns the lenient parsing. A mentee's answer is the numbers written in the reply
(quoted text and the signature removed), in the order written: "2", "Option 2",
"2 please", "2, then 1" all read; words ("the second one") and a number that is
not in the letter ("12") are unclear, and the relay asks for a number rather than
guess. A mentor's answer is the first word that means yes or no.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"(?<![\d.,:/])(\d{1,3})(?![\d]|[.,:/]\d)")
_SIGNATURE = re.compile(r"^--\s*$")
_ON = re.compile(r"^\s*on\s", re.IGNORECASE)
_YES = frozenset({"yes", "y", "yep", "yeah", "accept", "accepted", "ok", "okay", "sure", "happy"})
_NO = frozenset({"no", "n", "nope", "decline", "declined", "sorry", "cannot", "can't", "cant"})
_WORD = re.compile(r"[a-z']+")


def _unsigned(text: str) -> str:
    """The answer itself: up to a signature, or an "On ... wrote:" that a mail client
    wrapped over two lines (reply_text removes the one-line kind)."""
    lines = text.splitlines()
    kept = []
    for i, line in enumerate(lines):
        wrapped_intro = _ON.match(line) and "wrote:" in " ".join(lines[i : i + 2]).lower()
        if _SIGNATURE.match(line) or wrapped_intro:
            break
        kept.append(line)
    return "\n".join(kept)


def chosen_ranks(text: str, ranks: range) -> list[int] | None:
    """The ranks named, in the order written, each once; None when unclear."""
    found: list[int] = []
    for match in _NUMBER.finditer(_unsigned(text)):
        number = int(match.group(1))
        if number not in ranks:
            return None
        if number not in found:
            found.append(number)
    return found or None


def yes_or_no(text: str) -> bool | None:
    """True for yes, False for no (the first such word decides); None when unclear."""
    for word in _WORD.findall(_unsigned(text).lower()):
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None
