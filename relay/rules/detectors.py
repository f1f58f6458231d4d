"""Pure text detectors behind the moderation rules.

Owns the patterns: phone numbers, e-mail and postal addresses, messenger
names and handles, offers to move off the relay, links, and phrase matching
that sees through case, accents, spacing and look-alike characters. Each
detector takes a ``str`` and returns ``Found`` offsets into it; it knows
nothing about messages or configuration, so relay.rules can wrap it and tests
can call it directly. Patterns are compiled once, at import or in
``PhraseMatcher``; none of them can backtrack more than a bounded amount.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from email.message import Message
from itertools import groupby
from typing import NamedTuple
from urllib.parse import urlsplit


class Found(NamedTuple):
    start: int
    end: int
    reason: str
    detail: str = ""


PHONE = "phone number"
EMAIL = "e-mail address"
POSTAL = "postal address"
HANDLE = "messenger or social handle"
OFFER = "offer to move off the relay"
# The names [rules.contact] detect = [...] accepts, and the reason each gives.
CONTACT_KINDS = {"phone": PHONE, "email": EMAIL, "postal": POSTAL, "handle": HANDLE, "offer": OFFER}

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


def _latin1(text: str) -> bool:
    """Whether ``text`` is all Latin-1 (so its only decimal digits are 0-9)."""
    if text.isascii():
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _fold(text: str) -> str:
    """``text.translate(_SKELETON)``, through bytes when it can (several times faster)."""
    # str.translate looks every character up in a dict once the text is not
    # pure ASCII (a single "£" or "é" is enough); bytes.translate does not.
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text.translate(_SKELETON)
    if any(b in raw for b in _SKELETON_UNFIT):
        return text.translate(_SKELETON)
    return raw.translate(_SKELETON_LATIN1).decode("latin-1")


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
# regex pass is cheaper (about as dear as 30 finds on prose).
_FIND_EACH_UP_TO = 24


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
        self._regex = re.compile("|".join(map(re.escape, ordered))) if ordered else None

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
        folded = _fold(text)
        compact = folded.replace(_SEP, "")
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
# Speed: this runs on every message, so the case-insensitive patterns run on a
# lower-cased copy (no re.I), none starts with \b (sre cannot skip ahead past
# one; _word_start() checks the boundary instead), and the rarer families are
# only searched when a cheap substring test says they could match.

_PHONE_CANDIDATE = re.compile(
    # Not glued to a word, decimal, URL, price, time ("10:30") or query string.
    r"[+(\d](?<![\w+.,/@#£$€%&=?\-][+(\d])(?<!\d:[+(\d])"
    r"[\d \u00a0\u2009\u202f\u200b().\-\u2010-\u2013]{5,40}\d"
    r"(?![\w/%@]|[.,:]\d)"
)
# The same for text without non-ASCII digits (any Latin-1 text), where "\\d"
# is "[0-9]": sre tests a set of characters at each offset twice as fast as
# a Unicode category.
_PHONE_CANDIDATE_NARROW = re.compile(_PHONE_CANDIDATE.pattern.replace(r"[+(\d]", "[+(0-9]", 1))
_PHONE_CUE = re.compile(
    r"\b(?:call|ring|text|txt|phone|mobile|mob|cell|tel|number|whats\s?app|sms|reach)\b"
)
_DIGIT_GROUP = re.compile(r"\d+")
_ISBN_BEFORE = re.compile(r"\bisbn\b[^0-9]{0,12}$")
_DATE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{2,4}")
PHONE_SEPARATORS = frozenset(" \u00a0\u202f\u2009")


def _is_phone(candidate: str, before: str) -> bool:
    """Whether a run of digits reads as a phone number; ``before`` is lower case."""
    groups = _DIGIT_GROUP.findall(candidate)
    digits = sum(len(g) for g in groups)
    if digits > 15:
        return False
    if candidate.startswith(("+", "(+", "00")):
        return digits >= 8
    if _ISBN_BEFORE.search(before) or _DATE.fullmatch(candidate):
        return False
    seps = {c for c in candidate if not c.isdigit()}
    if seps == {"."}:
        # Dotted runs are usually versions, IPs or decimals; only 555.123.4567
        # or a leading trunk zero (06.12.34.56.78) reads as a phone number.
        us_style = [len(g) for g in groups] == [3, 3, 4]
        if not (us_style or candidate.startswith("0")):
            return False
    if len(groups) >= 3 and seps <= PHONE_SEPARATORS:
        thousands = not groups[0].startswith("0") and all(len(g) == 3 for g in groups[1:])
        if thousands and len(groups[0]) <= 3:
            return False
    if all(len(g) == 4 and g[:2] in ("19", "20") for g in groups):
        return False  # a list of years
    if digits >= 10:
        return True
    cue = _PHONE_CUE.search(before) is not None
    if digits == 9:
        return candidate[0] in "0(" or cue
    return digits >= 7 and cue


_NUMBER_WORDS = ("zero", "oh", "nought", "one", "two", "three", "four", "five", "six", "seven",
                 "eight", "nine")  # fmt: skip
_DIGIT_WORDS = "(?:" + "|".join((*_NUMBER_WORDS, *"0123456789")) + ")"
_SPELLED_PHONE = re.compile(rf"{_DIGIT_WORDS}(?:[\s,.\-]{{1,3}}{_DIGIT_WORDS}){{6,14}}\b")
_LETTERS = re.compile(r"[a-z]+")
# The longest run _SPELLED_PHONE can match: 15 words of up to 6 letters, 14 gaps of 3.
_SPELLED_SPAN = 15 * 6 + 14 * 3


def _may_spell_number(low: str) -> bool:
    """Whether at least two number words occur, and three within one phone's span.

    A spelled number must hold three words ("seven", "oh", ...) to count, so
    prose that has "someone" and "weight" in different paragraphs is spared
    the pattern, which tries most letters of the text.
    """
    at = [[*_positions(low, word)] for word in _NUMBER_WORDS]
    if sum(bool(found) for found in at) < 2:
        return False
    starts = sorted(i for found in at for i in found)
    return any(b - a <= _SPELLED_SPAN for a, b in zip(starts, starts[2:], strict=False))


_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_AT = r"(?:\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+)"
_DOT_WORD = r"(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+)"
_DOT = rf"(?:{_DOT_WORD}|\.)"
_MAIL_PROVIDERS = ("gmail", "googlemail", "hotmail", "yahoo", "icloud", "aol", "protonmail",
                   "outlook")  # fmt: skip
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.+-])[\w.+-]+(?:{_AT}(?:{'|'.join(_MAIL_PROVIDERS)})\b(?:{_DOT}[a-z]{{2,6}}\b){{0,2}}"
    rf"|{_AT}[\w-]+(?:{_DOT}[\w-]+)*?{_DOT_WORD}(?:com|net|org|edu|co|uk|io|ac)\b"
    rf"|\s*[(\[{{<]\s*at\s*[)\]}}>]\s*[\w-]+(?:{_DOT}[\w-]+)+)"
)
# "[(\[{<]\s*at\s*[)\]}>]", split by opening bracket so each part starts
# with a literal (found far faster than a class).
_BRACKET_AT = tuple(re.compile(re.escape(b) + r"\s*at\s*[)\]}>]") for b in "([{<")


class _Gated(NamedTuple):
    """A pattern and a cheap way to tell where (or whether) it can match.

    ``gates``: every match holds a match of one of them, and they start with a
    literal, so sre finds them fast; when none is in the text the pattern is
    not run. ``anchors``: every match holds one of these strings and no white
    space, so only the words around them are searched (see _finditer_near).
    Either way the matches are exactly those of ``pattern.finditer``.
    """

    pattern: re.Pattern[str]
    gates: tuple[re.Pattern[str], ...] = ()
    anchors: tuple[str, ...] = ()

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.gates and not any(gate.search(text) for gate in self.gates):
            return iter(())
        if self.anchors:
            where = sorted(i for anchor in self.anchors for i in _positions(text, anchor))
            return _finditer_near(self.pattern, text, where)
        return self.pattern.finditer(text)


def _after_words(words: Iterable[str], then: str) -> re.Pattern[str]:
    """A gate for "<one of words> <white space> <literal then>", led by ``then``.

    Only one character of the white space is looked behind at, and a second
    white space character lets any word through, so it holds for every match
    of "(?:words)\\s+then"; ``then`` must start with a literal character.
    """
    head = re.match(r"\w+", then)
    assert head is not None
    word = head.group()
    behind = "|".join(rf"(?<={w}\s{word})" for w in (*words, r"\s"))
    return re.compile(rf"{word}(?:{behind}){then[len(word) :]}")


_STREET_SUFFIX = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Close|Crescent|Cres|Boulevard|Blvd|"
    "Terrace|Gardens|Grove|Place|Court|Way|Mews|Square|Parade"
)
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
    "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC"
)
# Case matters here, so these run on the original text. Separate patterns,
# not one alternation: each can then skip ahead to its first character.
# sre scans for a character class (a digit, a capital) several times slower
# than for a literal, so the street pattern waits for a street word after a
# blank, looked for by its capital as a literal.
_POSTAL = (
    _Gated(
        re.compile(
            rf"\d{{1,5}}[A-Za-z]?,?[ \t]+(?:[A-Z][\w'’-]+[ \t]+){{1,3}}(?:{_STREET_SUFFIX})\b\.?"
        ),
        tuple(
            re.compile(rf"{c}(?<=[ \t]{c})(?:{'|'.join(w[1:] for w in words)})\b")
            for c, words in groupby(sorted(_STREET_SUFFIX.split("|")), key=lambda w: w[0])
        ),
    ),
    # No gates for these two: any cheap test for them scans digits, which costs
    # as much as the patterns do.
    _Gated(re.compile(r"[A-Z][A-Z]?\d[A-Z\d]?[ \t]?\d(?!AM\b|PM\b)[A-Z]{2}\b")),  # UK postcode
    _Gated(re.compile(rf"(?:{_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?\b")),  # US state + ZIP
)

MESSENGERS = (
    "WhatsApp", "Snapchat", "Instagram", "Insta", "Telegram", "Discord", "TikTok",
    "Kik", "Viber", "Skype", "Facebook", "Twitter", "Threema", "Wickr",
)  # fmt: skip
_MESSENGER_NAMES = PhraseMatcher(MESSENGERS)
# Names that split into ordinary words ("we chat", "be real", "face time") only
# count written as one word; names that are ordinary words need a contact cue.
_WEAK_MESSENGER = (
    _Gated(
        re.compile(r"(?:we-?chat|face-?time|be-?real|imessage)\b"),
        anchors=("chat", "time", "real", "imessage"),
    ),
    _Gated(
        re.compile(r"(?:on|via|use|my|your)\s+(?:signal|snap|ig|fb)\b"),
        tuple(re.compile(rf"{w}\b(?<=\s{w})") for w in ("signal", "snap", "ig", "fb")),
    ),
    _Gated(re.compile(r"signal\s+(?:me|app|number)\b")),
    _Gated(re.compile(r"(?:snap|sc|ig|insta):"), anchors=(":",)),
)
_WEAK_TRIGGERS = ("chat", "time", "real", "imessage", "signal", "snap", "ig", "fb", "sc:", "insta:")
_HANDLE_AFTER = re.compile(
    r"[ \t]*(?:(?:user\s?name|handle|name|id)[ \t]*)?(:|=|-|\bis\b)[ \t]*(@?[\w.]{2,30})"
)
# The "@" comes first (its lookbehind after it) so sre can skip from "@" to "@".
_AT_HANDLE = re.compile(r"@(?<![\w.@/&]@)[A-Za-z_][\w.]{1,29}(?<!\.)")

_DAYS = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "Tomorrow", "Tonight", "Today", "Later", "Anytime", "Asap", "ASAP", "When", "If",
    "On", "At", "After", "Before", "Back", "Please",
}  # fmt: skip
_ABOUT_YOU = r"(?:number|e-?mail|address|snap|insta|socials?|handle|username)\b"
# Most offers hinge on "me": "let me know" is everywhere, "call me" is not, so
# the gates look behind each "me" for the word before it.
_OFFER = (
    _Gated(
        re.compile(
            r"(?:text|txt|call|ring|phone|dm|whats\s?app|snap|facetime|hit)\s+me\b(?:\s+up\b)?"
        ),
        (
            _after_words(
                ("text", "txt", "call", "ring", "phone", "dm", "app", "snap", "facetime", "hit"),
                r"me\b",
            ),
        ),
    ),
    _Gated(re.compile(r"pm(?<![\d:]pm)(?<!\d\spm)\s+me\b")),
    _Gated(
        re.compile(
            r"(?:message|msg|e-?mail|mail|contact|reach|find|follow|add)\s+me\s+"
            r"(?:on|at|via|directly|privately|outside)\b"
        ),
        (
            _after_words(
                ("message", "msg", "mail", "contact", "reach", "find", "follow", "add"),
                r"me\s+(?:on|at|via|directly|privately|outside)\b",
            ),
        ),
    ),
    _Gated(
        re.compile(
            r"my\s+(?:(?:personal|private|real|home|own|other|mobile|cell|phone)\s+"
            r"(?:e-?mail|address|number|phone|mobile|account|socials?)|(?:number|mobile|cell)\s+is)\b"
        )
    ),
    _Gated(
        re.compile(rf"(?:give|send|tell|text)\s+me\s+your\s+{_ABOUT_YOU}"),
        (_after_words(("give", "send", "tell", "text"), r"me\s+your\s"),),
    ),
    _Gated(re.compile(rf"what(?:'|’|\s+i)?s\s+your\s+{_ABOUT_YOU}")),
    _Gated(
        re.compile(
            r"(?:outside|off)\s+(?:of\s+)?(?:the|this)\s+"
            r"(?:relay|system|platform|site|app|programme|program|scheme)\b"
        )
    ),
)
_NEXT_WORD = re.compile(r"\s+(\w+)")


def _lower(text: str) -> str:
    """``text`` in lower case, one character for one, so offsets still match."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


_SPACE = re.compile(r"\s")


def _positions(text: str, needle: str) -> Iterator[int]:
    i = text.find(needle)
    while i >= 0:
        yield i
        i = text.find(needle, i + 1)


def _finditer_near(
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


def _word_start(text: str, i: int) -> bool:
    return i == 0 or not text[i - 1].isalnum()


def find_contacts(text: str, allowed_addresses: frozenset[str] = frozenset()) -> list[Found]:
    """Phone numbers, addresses, handles and offers to talk elsewhere."""
    low = _lower(text)
    found: list[Found] = []
    phones = _PHONE_CANDIDATE_NARROW if _latin1(text) else _PHONE_CANDIDATE
    for m in phones.finditer(text):
        if _is_phone(m.group(), low[max(0, m.start() - 40) : m.start()]):
            found.append(Found(m.start(), m.end(), PHONE))
    if _may_spell_number(low):
        for m in _SPELLED_PHONE.finditer(low):
            if _word_start(low, m.start()) and len(_LETTERS.findall(m.group())) >= 3:
                found.append(Found(m.start(), m.end(), PHONE))
    if "@" in text:
        for m in _finditer_near(_EMAIL, text, _positions(text, "@")):
            address = m.group().rstrip(".").lower()
            if address not in allowed_addresses:
                found.append(Found(m.start(), m.start() + len(address), EMAIL))
        found += [Found(m.start(), m.end(), HANDLE) for m in _AT_HANDLE.finditer(text)]
    if (
        " dot " in low
        or any(p in low for p in _MAIL_PROVIDERS)
        or any(b.search(low) for b in _BRACKET_AT)
    ):
        found += [Found(m.start(), m.end(), EMAIL) for m in _OBFUSCATED_EMAIL.finditer(low)]
    for postal in _POSTAL:
        for m in postal.finditer(text):
            if _word_start(text, m.start()):
                found.append(Found(m.start(), m.end(), POSTAL))
    for start, end, _name in _MESSENGER_NAMES.finditer(text):
        found.append(Found(start, _extend_to_handle(low, end), HANDLE))
    if any(word in low for word in _WEAK_TRIGGERS):
        for weak in _WEAK_MESSENGER:
            for m in weak.finditer(low):
                if _word_start(low, m.start()):
                    found.append(Found(m.start(), _extend_to_handle(low, m.end()), HANDLE))
    for offer in _OFFER:
        for m in offer.finditer(low):
            if not _word_start(low, m.start()):
                continue
            if m.group().startswith("call") and _calls_me_by_name(text, m.end()):
                continue
            found.append(Found(m.start(), m.end(), OFFER))
    return found


def _extend_to_handle(text: str, end: int) -> int:
    """Widen "my snap is jess_99" past the name, so redaction takes the handle too."""
    m = _HANDLE_AFTER.match(text, end)
    if m is None:
        return end
    token = m.group(2)
    if m.group(1) == ":" or token.startswith("@") or any(c in token for c in "0123456789_."):
        return m.end() - (len(token) - len(token.rstrip(".")))
    return end


def _calls_me_by_name(text: str, end: int) -> bool:
    """ "you can call me Sam" introduces a name; "call me Monday" is an offer."""
    m = _NEXT_WORD.match(text, end)
    if m is None:
        return False
    word = m.group(1)
    return word[:1].isupper() and word not in _DAYS


# --- links ------------------------------------------------------------------------

# Bare domains only count with a common TLD in lower case: "home.To be" (a
# missing space after a full stop) or "main.py" must not read as a link.
_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|uk|ca|au|nz|ie|de|fr|es|nl|ch|se|dk|"
    "fi|pl|eu|jp|cn|ru|br|mx|za|app|dev|tv|ly|gg|ai|xyz|online|site|link|live|club|"
    "shop|store|blog|page|cc|ac"
)
_URL = re.compile(
    r"\b(?:(?i:https?|ftp)://|(?i:www)\.)[^\s<>\"'`]+"
    rf"|(?<![@\w.\-/])(?:(?i:[a-z0-9][a-z0-9\-]{{0,62}})\.)+(?:{_TLDS})\b(?!\.\w|-)"
    r"(?::\d{1,5})?(?:/[^\s<>\"'`]*)?"
)
_TRAILING = ".,;:!?'\"*"
_HREF_IGNORED = ("mailto:", "tel:", "sms:", "cid:", "#")


def _trim_url(url: str) -> str:
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def host_of(url: str) -> str:
    """The lower-case host name of a URL written with or without a scheme."""
    target = url if "://" in url[:12] or url.startswith("//") else "//" + url
    try:
        host = urlsplit(target).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


# Each link holds "://", or a "." after "www" or before a common TLD; the
# dot is a literal, so sre finds it fast (an alternation it scans char by char).
_LINK_DOT = re.compile(rf"\.(?:(?<=(?i:www)\.)|(?:{_TLDS})\b)")


def find_links(text: str) -> list[Found]:
    """Every URL in running text; ``detail`` is its host name."""
    found: list[Found] = []
    # Every link holds one of the triggers and no white space, so only the
    # words around a trigger need the (costly, starts-anywhere) URL pattern.
    anchors = sorted((*_positions(text, "://"), *(m.start() for m in _LINK_DOT.finditer(text))))
    for m in _finditer_near(_URL, text, anchors):
        url = _trim_url(m.group())
        if url:
            found.append(Found(m.start(), m.start() + len(url), "link", host_of(url)))
    return found


def href_link(value: str) -> Found | None:
    """The link an HTML href points to, unless it is an address, anchor or part."""
    lowered = value.lower()
    if not value or lowered.startswith(_HREF_IGNORED):
        return None
    scheme = lowered.split(":", 1)[0] if ":" in lowered[:12] else ""
    if scheme in ("http", "https", "ftp") or lowered.startswith(("//", "www.")):
        return Found(0, len(value), "link", host_of(value))
    if scheme:
        return Found(0, len(value), "link", f"{scheme}:")
    return None  # a relative link goes nowhere once the message leaves its sender


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is one of the allowed domains or below one."""
    return any(host == d or host.endswith("." + d) for d in allowed)


# --- machine-written mail ---------------------------------------------------------

_PRECEDENCE_AUTOMATED = frozenset({"bulk", "junk", "list", "auto_reply"})
_FLAG_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autogenerated")


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value).strip()
    except Exception:  # a malformed header must not stop moderation
        return ""


MAX_RECEIVED_HEADERS = 30  # more hops than any real path: a loop


def automation_reason(msg: Message, own_loop_id: str = "") -> str | None:
    """Why ``msg`` looks machine-written (RFC 3834 and common practice), or None."""
    auto = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in _PRECEDENCE_AUTOMATED:
        return f"Precedence: {precedence}"
    for name in _FLAG_HEADERS:
        value = _header(msg, name)
        if name in msg and value.lower() not in ("no", "false"):
            return f"{name}: {value}" if value else name
    hops = len(msg.get_all("Received") or [])
    if hops > MAX_RECEIVED_HEADERS:
        return f"mail loop: {hops} Received headers"
    if own_loop_id:
        loops = [str(v).strip().lower() for v in msg.get_all("X-Loop") or []]
        if own_loop_id.lower() in loops:
            return f"X-Loop: {own_loop_id} (our own mail came back)"
    if msg.get_content_type() == "multipart/report":
        return "delivery or read report"
    if _header(msg, "Return-Path") == "<>":
        return "null return path (a bounce)"
    return None


def is_automated(msg: Message, own_loop_id: str = "") -> bool:
    """Whether ``msg`` is machine-written; never send a notice in reply to one."""
    return automation_reason(msg, own_loop_id) is not None
