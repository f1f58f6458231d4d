"""The textual forms of an address's characters, as pieces both searches share.

Owns the one definition of "a participant's address written in text": each
character in any letter case or as ``%hh``, ``&#N;``, ``&#xH;`` or a named
entity, the "@" also as undecoded quoted-printable or a JS/JSON escape, and
invisible characters (``<wbr>``, soft hyphens, zero-width characters, their
entities; in HTML any tag) allowed between any two characters.

Each form is a ``Piece``: a small pattern, the same pattern written
backwards (to read text from right to left), and whether a ";" may follow.
``address_pattern`` joins the pieces into one case-insensitive pattern: the
definition itself, which relay.outbound.scrub_search finds the same matches
of without compiling (compiling it costs ~15 ms per pair and address list).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

# How a client may write a character of an address besides the character itself.
_NAMED_ENTITIES = {
    "@": ("&commat;",),
    ".": ("&period;",),
    "_": ("&lowbar;",),
    "+": ("&plus;",),
    "-": ("&dash;", "&hyphen;"),
}
# Forms only the "@" takes: quoted-printable left undecoded (vCard 2.1), JS/JSON escapes.
_AT_ONLY = ("=40", r"\u0040", r"\x40")
# Every form of "@" holds one of these, in any letter case: text with none of them
# holds no address, which is decided far faster than any search.
AT_MARKERS = ("@", "&", "\\", "%40", "=40")


@dataclass(frozen=True)
class Piece:
    """One way to write something: ``forward`` read left to right, ``backward`` right to
    left (the same text reversed); with ``semicolon`` a ";" may follow (``&#64;`` or
    ``&#64``). Every piece's texts are prefix- and suffix-free, so at a given place it
    matches at most one length (plus the optional ";").
    """

    forward: str
    backward: str
    semicolon: bool = False

    @property
    def source(self) -> str:
        """The piece as written in the one pattern."""
        return self.forward + (";?" if self.semicolon else "")


def _literal(text: str) -> Piece:
    return Piece(re.escape(text), re.escape(text[::-1]))


def _decimal(code: int, *, ended: bool = False) -> Piece:
    """``&#0*N;?``, or with ``ended`` ``&#0*N;`` (the ";" required)."""
    digits = str(code)
    if ended:
        return Piece(f"&#0*{digits};", f";{digits[::-1]}0*#&")
    return Piece(f"&#0*{digits}", f"{digits[::-1]}0*#&", semicolon=True)


def _hexadecimal(code: int, *, ended: bool = False) -> Piece:
    digits = f"{code:x}"
    if ended:
        return Piece(f"&#x0*{digits};", f";{digits[::-1]}0*x#&")
    return Piece(f"&#x0*{digits}", f"{digits[::-1]}0*x#&", semicolon=True)


@functools.lru_cache(maxsize=4096)  # a few dozen characters make up nearly every address
def char_pieces(char: str) -> tuple[Piece, ...]:
    """Every form of one (lower-case) character of an address, in the pattern's order."""
    code = ord(char)
    pieces = [_literal(char), _literal(f"%{code:02x}"), _decimal(code), _hexadecimal(code)]
    pieces += [_literal(form) for form in _NAMED_ENTITIES.get(char, ())]
    if char == "@":
        pieces += [_literal(form) for form in _AT_ONLY]
    return tuple(pieces)


# What a client may put inside an address without changing what a reader sees:
# <wbr> (Gmail, in long addresses), soft hyphens and zero-width characters.
INVISIBLE = (
    Piece(r"<wbr\s*/?>", r">/?\s*rbw<"),
    Piece("&shy;", ";yhs&"),
    _decimal(0xAD, ended=True),
    _hexadecimal(0xAD, ended=True),
    _decimal(0x200B, ended=True),
    _hexadecimal(0x200B, ended=True),
    Piece("&zwn?j;", ";jn?wz&"),
    Piece(r"[\u00ad\u200b-\u200d\u2060]", r"[\u00ad\u200b-\u200d\u2060]"),
)
# In HTML, any tag may sit inside an address without a reader seeing it
# (ana<span></span>@example.org), so there tags count as invisible too.
INVISIBLE_IN_HTML = (*INVISIBLE, Piece("<[^<>]{0,256}>", ">[^<>]{0,256}<"))


def invisible(markup: bool) -> tuple[Piece, ...]:
    return INVISIBLE_IN_HTML if markup else INVISIBLE


def _group(pieces: Iterable[Piece]) -> str:
    return "(?:" + "|".join(piece.source for piece in pieces) + ")"


def search_order(addresses: Iterable[str]) -> tuple[str, ...]:
    """The addresses as the pattern tries them: lower case, each once, longest first."""
    unique = {address.lower() for address in addresses if address}
    return tuple(sorted(unique, key=len, reverse=True))


def address_pattern(addresses: Iterable[str], *, markup: bool = False) -> re.Pattern[str] | None:
    """One case-insensitive pattern that finds any of the addresses, in any textual form.

    With markup, HTML tags between the characters are part of the match.
    """
    ordered = search_order(addresses)
    return compiled_pattern(ordered, markup) if ordered else None


@functools.lru_cache(maxsize=64)  # only where the search gives up (see scrub_search)
def compiled_pattern(addresses: tuple[str, ...], markup: bool = False) -> re.Pattern[str]:
    return re.compile(pattern_source(addresses, markup), re.IGNORECASE)


def pattern_source(addresses: tuple[str, ...], markup: bool = False) -> str:
    between = _group(invisible(markup)) + "*"
    return "|".join(
        between.join(_group(char_pieces(char)) for char in address) for address in addresses
    )
