"""The reference for scrubbing: the one-pattern builder as it was before relay.outbound.scrub_search.

Kept verbatim (from relay/outbound/scrub_text.py at 503eba5) so that the
search that replaced it is compared against the old pattern itself, not
against a copy of its own pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NAMED_ENTITIES = {
    "@": ("&commat;",),
    ".": ("&period;",),
    "_": ("&lowbar;",),
    "+": ("&plus;",),
    "-": ("&dash;", "&hyphen;"),
}
_AT_ONLY = ("=40", r"\u0040", r"\x40")
_INVISIBLE = (
    r"(?:<wbr\s*/?>|&shy;|&#0*173;|&#x0*ad;|&#0*8203;|&#x0*200b;|&zwn?j;"
    r"|[\u00ad\u200b-\u200d\u2060])*"
)
_INVISIBLE_IN_HTML = _INVISIBLE[:-2] + r"|<[^<>]{0,256}>)*"


def _char_forms(char: str) -> str:
    code = ord(char)
    forms = [re.escape(char), f"%{code:02x}", f"&#0*{code};?", f"&#x0*{code:x};?"]
    forms += [re.escape(form) for form in _NAMED_ENTITIES.get(char, ())]
    if char == "@":
        forms += [re.escape(form) for form in _AT_ONLY]
    return "(?:" + "|".join(forms) + ")"


def reference_pattern(addresses: Iterable[str], *, markup: bool = False) -> re.Pattern[str] | None:
    unique = sorted({address.lower() for address in addresses if address}, key=len, reverse=True)
    return _address_pattern(tuple(unique), markup) if unique else None


def _address_pattern(addresses: tuple[str, ...], markup: bool = False) -> re.Pattern[str]:
    between = _INVISIBLE_IN_HTML if markup else _INVISIBLE
    return re.compile(
        "|".join(between.join(_char_forms(char) for char in address) for address in addresses),
        re.IGNORECASE,
    )
