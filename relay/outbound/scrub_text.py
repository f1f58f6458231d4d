"""The textual forms of an address, and the Scrubber that replaces them.

Owns what "finding a participant's address in text" means: every
registered address in any letter case and in every textual form a mail
client produces (plain, URL-encoded ``ana%40example.org``, HTML entities
``ana&#64;example.org``, ``mailto:`` links, JSON and quoted-printable
escapes of the "@", invisible characters inside it, vCard/iCalendar line
folding), and the hosts on participants' domains in machine-made values.
Works on ``str`` only; relay.outbound.scrub applies it to a message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

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
# What a client may put inside an address without changing what a reader sees:
# <wbr> (Gmail, in long addresses), soft hyphens and zero-width characters.
_INVISIBLE = (
    r"(?:<wbr\s*/?>|&shy;|&#0*173;|&#x0*ad;|&#0*8203;|&#x0*200b;|&zwn?j;"
    r"|[\u00ad\u200b-\u200d\u2060])*"
)
# In HTML, any tag may sit inside an address without a reader seeing it
# (ana<span></span>@example.org), so there tags count as invisible too.
_INVISIBLE_IN_HTML = _INVISIBLE[:-2] + r"|<[^<>]{0,256}>)*"
# vCard and iCalendar fold long lines by inserting CRLF + space, even inside an address.
FOLDED_TYPES = frozenset(
    {"text/calendar", "text/vcard", "text/x-vcard", "text/directory", "application/ics"}
)
_FOLD = re.compile(r"\r?\n[ \t]")
_FOLD_WIDTH = 75
# Every form of "@" above holds one of these, in any letter case: text with none
# of them holds no address, which is decided far faster than the pattern's scan.
_AT_MARKERS = ("@", "&", "\\", "%40", "=40")


def may_hold_address(text: str) -> bool:
    """False only if no form of "@" (so no address written with one) is in the text."""
    return any(marker in text for marker in _AT_MARKERS)


def _char_forms(char: str) -> str:
    code = ord(char)
    forms = [re.escape(char), f"%{code:02x}", f"&#0*{code};?", f"&#x0*{code:x};?"]
    forms += [re.escape(form) for form in _NAMED_ENTITIES.get(char, ())]
    if char == "@":
        forms += [re.escape(form) for form in _AT_ONLY]
    return "(?:" + "|".join(forms) + ")"


def address_pattern(addresses: Iterable[str], *, markup: bool = False) -> re.Pattern[str] | None:
    """One case-insensitive pattern that finds any of the addresses, in any textual form.

    With markup, HTML tags between the characters are part of the match.
    """
    unique = sorted({address.lower() for address in addresses if address}, key=len, reverse=True)
    return _address_pattern(tuple(unique), markup) if unique else None


@functools.lru_cache(maxsize=256)  # the same pair's addresses, message after message
def _address_pattern(addresses: tuple[str, ...], markup: bool = False) -> re.Pattern[str]:
    between = _INVISIBLE_IN_HTML if markup else _INVISIBLE
    return re.compile(
        "|".join(between.join(_char_forms(char) for char in address) for address in addresses),
        re.IGNORECASE,
    )


def host_pattern(domains: Iterable[str]) -> re.Pattern[str] | None:
    """Finds any of the domains or a host under one of them (mail.example.org)."""
    unique = sorted({d.lower().strip(".") for d in domains if d}, key=len, reverse=True)
    return _host_pattern(tuple(unique)) if unique else None


@functools.lru_cache(maxsize=256)
def _host_pattern(domains: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(domain) for domain in domains)
    return re.compile(rf"(?<![\w.-])(?:[\w-]+\.)*(?:{names})(?![\w-]|\.\w)", re.IGNORECASE)


def replace_addresses(text: str, addresses: Iterable[str], replacement: str) -> str:
    pattern = address_pattern(addresses)
    return pattern.sub(replacement, text) if pattern else text


class Scrubber:
    """Everything needed to scrub one message, compiled once."""

    def __init__(
        self,
        addresses: Iterable[str],
        replacement: str,
        hidden_domains: Iterable[str] | None = None,
        strip_remote: bool = False,
    ) -> None:
        listed = tuple(dict.fromkeys(a.lower() for a in addresses if a))
        self.addresses = listed
        self.replacement = replacement
        self.relay_domain = replacement.rpartition("@")[2]
        self.strip_remote = strip_remote  # remove remote images and CSS url() from HTML
        # The "@" gate holds only if every address has one (a registered address does).
        self._gated = all("@" in address for address in listed)
        domains = (
            hidden_domains
            if hidden_domains is not None
            else (address.rpartition("@")[2] for address in listed)
        )
        self.hosts = host_pattern(domains)

    # Compiled on first use: a pair's patterns take ~15 ms each to compile, and most
    # messages never need them (no form of "@" in the text, or no HTML part).
    @functools.cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return address_pattern(self.addresses)

    @functools.cached_property
    def markup_pattern(self) -> re.Pattern[str] | None:
        return address_pattern(self.addresses, markup=True)

    def text(self, text: str) -> str:
        """The participants' addresses replaced by the pair address."""
        if self._gated and not may_hold_address(text):
            return text
        pattern = self.pattern
        return pattern.sub(self.replacement, text) if pattern is not None else text

    def markup(self, html_text: str) -> str:
        """Addresses replaced in HTML source, also where tags split them."""
        if self._gated and not may_hold_address(html_text):
            return html_text
        pattern = self.markup_pattern
        return pattern.sub(self.replacement, html_text) if pattern is not None else html_text

    def hosts_too(self, text: str) -> str:
        """Addresses replaced, then any host on a participant's domain replaced by the relay's.

        Only for machine-made values (identifiers, boundaries, calendar
        fields), where no reader needs the host to stay readable.
        """
        text = self.text(text)
        return self.hosts.sub(self.relay_domain, text) if self.hosts else text

    def folded_text(self, text: str) -> str:
        """Scrub vCard/iCalendar text: unfold first, so a folded address is found."""
        unfolded = _FOLD.sub("", text)
        scrubbed = self.hosts_too(unfolded)
        if scrubbed == unfolded:
            return text
        newline = "\r\n" if "\r\n" in text else "\n"
        return newline.join(_fold(line, newline) for line in scrubbed.split(newline))


def _fold(line: str, newline: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1, RFC 6350 3.2)."""
    if len(line.encode("utf-8")) <= _FOLD_WIDTH:
        return line
    pieces: list[str] = []
    current = ""
    for char in line:
        if len((current + char).encode("utf-8")) > _FOLD_WIDTH - (1 if pieces else 0):
            pieces.append(current)
            current = ""
        current += char
    pieces.append(current)
    return (newline + " ").join(pieces)
