"""Contact details in text: phones, e-mail and postal addresses, handles, offers.

What a mentor or mentee might write to move the conversation off the relay.
``find_contacts`` returns every ``Found``, labelled with the reasons of
relay.rules.detectors.kinds (what a moderator reads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import NamedTuple

from relay.rules.detectors.digits import CAPITAL, Digits, finditer_windows, match_at
from relay.rules.detectors.kinds import EMAIL, HANDLE, OFFER, PHONE, POSTAL
from relay.rules.detectors.text import (
    Found,
    PhraseMatcher,
    finditer_near,
    lower_keeping_offsets,
    positions,
    word_start,
)

# Speed: this runs on every message, so the case-insensitive patterns run on a
# lower-cased copy (no re.I), none starts with \b (sre cannot skip ahead past
# one; word_start() checks the boundary instead), and the rarer families are
# only searched when a cheap substring test says they could match.

_PHONE_CANDIDATE = re.compile(
    # Not glued to a word, decimal, URL, price, time ("10:30") or query string.
    r"[+(\d](?<![\w+.,/@#£$€%&=?\-][+(\d])(?<!\d:[+(\d])"
    r"[\d \u00a0\u2009\u202f\u200b().\-\u2010-\u2013]{5,40}\d"
    r"(?![\w/%@]|[.,:]\d)"
)
# The same for text without decimal digits beyond 0-9 (Digits.ascii_only), where
# "\\d" is "[0-9]": sre tests a set of characters at each offset twice as fast as
# a Unicode category.
_PHONE_CANDIDATE_NARROW = re.compile(_PHONE_CANDIDATE.pattern.replace(r"[+(\d]", "[+(0-9]", 1))
# A candidate ends in a digit at most 41 characters after its start and at
# least 6; an attempt reads at most 44 characters (its lookahead included).
_PHONE_WINDOW = (41, -7)
_PHONE_REACH = 44
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
    present = [word for word in _NUMBER_WORDS if word in low]
    if len(present) < 2:
        return False
    starts = sorted(i for word in present for i in positions(low, word))
    return any(b - a <= _SPELLED_SPAN for a, b in zip(starts, starts[2:], strict=False))


_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# Full-width forms (U+FF01-FF5E) are ASCII's printable characters written wide, one for
# one, and U+FE6B is a small "@": an address written "ｊｏ＠ｍａｉｌ．ｃｏｍ" is read as
# ASCII at the same offsets.
_WIDE_TO_ASCII = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0xFE6B: ord("@")}
_WIDE_ATS = ("\uff20", "\ufe6b")
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
    space, so only the words around them are searched (see finditer_near).
    ``needs``: strings every match holds, all of them, tested first (str's
    ``in`` is cheaper than starting a search, which counts on short texts
    such as a subject). Either way the matches are exactly those of
    ``pattern.finditer``.
    """

    pattern: re.Pattern[str]
    gates: tuple[re.Pattern[str], ...] = ()
    anchors: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        for needed in self.needs:
            if needed not in text:
                return iter(())
        if self.gates and not any(gate.search(text) for gate in self.gates):
            return iter(())
        if self.anchors:
            where = sorted(i for anchor in self.anchors for i in positions(text, anchor))
            return finditer_near(self.pattern, text, where)
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
_STREET = _Gated(
    re.compile(
        rf"\d{{1,5}}[A-Za-z]?,?[ \t]+(?:[A-Z][\w'’-]+[ \t]+){{1,3}}(?:{_STREET_SUFFIX})\b\.?"
    ),
    tuple(
        re.compile(rf"{c}(?<=[ \t]{c})(?:{'|'.join(w[1:] for w in words)})\b")
        for c, words in groupby(sorted(_STREET_SUFFIX.split("|")), key=lambda w: w[0])
    ),
)
# These two are tried only where their digits are (relay.rules.detectors.digits):
# a UK postcode starts with one or two capitals before a digit (on capitals
# alone, as in "1XXXX..." or shouted text, sre would try it at every letter),
# a ZIP code is a run of exactly five digits after blanks after a state.
_UK_POSTCODE = re.compile(r"[A-Z][A-Z]?\d[A-Z\d]?[ \t]?\d(?!AM\b|PM\b)[A-Z]{2}\b")
_US_ZIP = re.compile(rf"(?:{_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?\b")


def _postcode_starts(digits: Digits) -> Iterator[int]:
    """Where a UK postcode can start: the capital before a digit, and one before it."""
    marks = digits.marks
    for capital in digits.capitals_before_digits():
        if capital and marks[capital - 1] == CAPITAL[0]:
            yield capital - 1
        yield capital


def _zip_starts(text: str, digits: Digits) -> Iterator[int]:
    """Where a state + ZIP match can start: two letters before the blanks before
    a run of five digits."""
    for start in digits.runs_after_blank(5):
        blank = start - 1
        while blank > 0 and text[blank - 1] in " \t":
            blank -= 1
        if blank >= 2:
            yield blank - 2


# What every street match holds, on Digits.marks: its number's last digit, maybe
# a letter ("221B", "A" or "\0") and a comma ("\0"), then a blank. Searched on
# the marks (a literal first) before the street words' gates on the text.
_STREET_NUMBER = re.compile(rb"1[A\x00]?\x00?[ ]")


def _postal(text: str, digits: Digits) -> Iterator[re.Match[str]]:
    """Street addresses, UK postcodes, US state + ZIP: each family in text order."""
    if not digits:
        return  # each of them holds a digit
    if _STREET_NUMBER.search(digits.marks):
        yield from _STREET.finditer(text)
    yield from match_at(_UK_POSTCODE, text, _postcode_starts(digits))
    yield from match_at(_US_ZIP, text, _zip_starts(text, digits))


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
    _Gated(re.compile(r"signal\s+(?:me|app|number)\b"), needs=("signal",)),
    _Gated(re.compile(r"(?:snap|sc|ig|insta):"), anchors=(":",)),
)
_WEAK_TRIGGERS = ("chat", "time", "real", "imessage", "signal", "snap", "ig", "fb", "sc:", "insta:")
# A Discord name may end in its "#1234" discriminator: part of the handle, redacted with it.
_HANDLE_AFTER = re.compile(
    r"[ \t]*(?:(?:user\s?name|handle|name|id)[ \t]*)?(:|=|-|\bis\b)[ \t]*"
    r"(@?[\w.]{2,30}(?:#\d{4,6})?)"
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
        needs=("me",),
    ),
    _Gated(re.compile(r"pm(?<![\d:]pm)(?<!\d\spm)\s+me\b"), needs=("pm", "me")),
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
        needs=("me",),
    ),
    _Gated(
        re.compile(
            r"my\s+(?:(?:personal|private|real|home|own|other|mobile|cell|phone)\s+"
            r"(?:e-?mail|address|number|phone|mobile|account|socials?)|(?:number|mobile|cell)\s+is)\b"
        ),
        needs=("my",),
    ),
    _Gated(
        re.compile(rf"(?:give|send|tell|text)\s+me\s+your\s+{_ABOUT_YOU}"),
        (_after_words(("give", "send", "tell", "text"), r"me\s+your\s"),),
        needs=("me", "your"),
    ),
    _Gated(re.compile(rf"what(?:'|’|\s+i)?s\s+your\s+{_ABOUT_YOU}"), needs=("your",)),
    _Gated(
        re.compile(
            r"(?:outside|off)\s+(?:of\s+)?(?:the|this)\s+"
            r"(?:relay|system|platform|site|app|programme|program|scheme)\b"
        ),
        needs=("th",),
    ),
)
_NEXT_WORD = re.compile(r"\s+(\w+)")


def find_contacts(text: str, allowed_addresses: frozenset[str] = frozenset()) -> list[Found]:
    """Phone numbers, addresses, handles and offers to talk elsewhere."""
    low = lower_keeping_offsets(text)
    found: list[Found] = []
    digits = Digits.of(text)
    phones = _PHONE_CANDIDATE_NARROW if digits.ascii_only else _PHONE_CANDIDATE
    for m in finditer_windows(phones, text, digits.windows(*_PHONE_WINDOW), _PHONE_REACH):
        if _is_phone(m.group(), low[max(0, m.start() - 40) : m.start()]):
            found.append(Found(m.start(), m.end(), PHONE))
    if _may_spell_number(low):
        for m in _SPELLED_PHONE.finditer(low):
            if word_start(low, m.start()) and len(_LETTERS.findall(m.group())) >= 3:
                found.append(Found(m.start(), m.end(), PHONE))
    narrow = text.translate(_WIDE_TO_ASCII) if any(at in text for at in _WIDE_ATS) else text
    if "@" in narrow:
        for m in finditer_near(_EMAIL, narrow, positions(narrow, "@")):
            address = m.group().rstrip(".").lower()
            if address not in allowed_addresses:
                found.append(Found(m.start(), m.start() + len(address), EMAIL))
        found += [Found(m.start(), m.end(), HANDLE) for m in _AT_HANDLE.finditer(narrow)]
    if "at" in low and (  # every form of _OBFUSCATED_EMAIL's "at" holds it
        " dot " in low
        or any(p in low for p in _MAIL_PROVIDERS)
        or any(b.search(low) for b in _BRACKET_AT)
    ):
        found += [Found(m.start(), m.end(), EMAIL) for m in _OBFUSCATED_EMAIL.finditer(low)]
    for m in _postal(text, digits):
        if word_start(text, m.start()):
            found.append(Found(m.start(), m.end(), POSTAL))
    for start, end, _name in _MESSENGER_NAMES.finditer(text):
        found.append(Found(start, _extend_to_handle(low, end), HANDLE))
    if any(word in low for word in _WEAK_TRIGGERS):
        for weak in _WEAK_MESSENGER:
            for m in weak.finditer(low):
                if word_start(low, m.start()):
                    found.append(Found(m.start(), _extend_to_handle(low, m.end()), HANDLE))
    for offer in _OFFER:
        for m in offer.finditer(low):
            if not word_start(low, m.start()):
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
