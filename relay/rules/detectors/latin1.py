"""A text as one byte per character, for the C loops of bytes.translate and bytes.find.

``str.translate`` looks every character up in a dict, and sre scans for a
character class several times slower than for a literal; on bytes both run
at memory speed. Most mail is Latin-1 but for a few characters (curly quotes,
dashes, emoji), so a text is encoded as Latin-1 with each other character
written b"?", and the offsets of those others are listed for the callers to
read one by one (relay.rules.detectors.text folds them, .digits tells their
digits). The last text each thread asked about is remembered: the contact,
keyword and safeguarding rules all read the same segments.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

# More characters beyond Latin-1 than one in _MANY (Greek, Cyrillic, CJK
# text): they are not listed, and callers read the text itself.
_MANY = 32
_recent = threading.local()


class Latin1(NamedTuple):
    raw: bytes  # one byte per character: the character, or b"?" beyond Latin-1
    others: tuple[int, ...] | None  # offsets of the characters beyond Latin-1; None: too many


def as_latin1(text: str) -> Latin1:
    """``text`` as Latin-1 bytes and the offsets of the characters that are not."""
    if getattr(_recent, "text", None) is text:
        view: Latin1 = _recent.view
        return view
    view = _read(text)
    _recent.text, _recent.view = text, view
    return view


def _read(text: str) -> Latin1:
    raw = text.encode("latin-1", errors="replace")  # one "?" for each other character
    if text.isascii():
        return Latin1(raw, ())
    replaced = raw.count(b"?") - text.count("?")
    if not replaced:
        return Latin1(raw, ())
    if replaced * _MANY > len(text):
        return Latin1(raw, None)
    others = []
    at = raw.find(b"?")
    while at >= 0:
        if text[at] != "?":
            others.append(at)
        at = raw.find(b"?", at + 1)
    return Latin1(raw, tuple(others))
