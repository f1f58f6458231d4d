"""The Scrubber: a participant's address replaced in text, in every form.

Owns what scrubbing a piece of text means: every registered address in any
letter case and in every textual form a mail client produces (plain,
URL-encoded ``ana%40example.org``, HTML entities ``ana&#64;example.org``,
``mailto:`` links, JSON and quoted-printable escapes of the "@", invisible
characters inside it: the forms are defined in relay.outbound.scrub_forms
and found by relay.outbound.scrub_search), vCard/iCalendar line folding,
and the hosts on participants' domains in machine-made values. Works on
``str`` only; relay.outbound.scrub applies it to a message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from relay.outbound import scrub_search
from relay.outbound.scrub_forms import AT_MARKERS, address_pattern, search_order

__all__ = ["FOLDED_TYPES", "Scrubber", "address_pattern", "may_hold_address", "replace_addresses"]

# vCard and iCalendar fold long lines by inserting CRLF + space, even inside an address.
FOLDED_TYPES = frozenset(
    {"text/calendar", "text/vcard", "text/x-vcard", "text/directory", "application/ics"}
)
_FOLD = re.compile(r"\r?\n[ \t]")
_FOLD_WIDTH = 75


def may_hold_address(text: str) -> bool:
    """False only if no form of "@" (so no address written with one) is in the text."""
    # A one-character search is a memchr, ~50x faster than one for "%40" over a long text:
    # the longer markers are searched only where their first character is.
    return any(marker[0] in text and (len(marker) == 1 or marker in text) for marker in AT_MARKERS)


def host_pattern(domains: Iterable[str]) -> re.Pattern[str] | None:
    """Finds any of the domains or a host under one of them (mail.example.org)."""
    unique = sorted({d.lower().strip(".") for d in domains if d}, key=len, reverse=True)
    return _host_pattern(tuple(unique)) if unique else None


@functools.lru_cache(maxsize=256)
def _host_pattern(domains: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(domain) for domain in domains)
    return re.compile(rf"(?<![\w.-])(?:[\w-]+\.)*(?:{names})(?![\w-]|\.\w)", re.IGNORECASE)


def replace_addresses(text: str, addresses: Iterable[str], replacement: str) -> str:
    """Every textual form of the addresses in text replaced (address_pattern's matches)."""
    return scrub_search.replace(search_order(addresses), text, replacement, markup=False)


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
        self._ordered = search_order(listed)  # as address_pattern would try them
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

    def text(self, text: str) -> str:
        """The participants' addresses replaced by the pair address."""
        if self._gated and not may_hold_address(text):
            return text
        return scrub_search.replace(self._ordered, text, self.replacement, markup=False)

    def markup(self, html_text: str) -> str:
        """Addresses replaced in HTML source, also where tags split them."""
        if self._gated and not may_hold_address(html_text):
            return html_text
        return scrub_search.replace(self._ordered, html_text, self.replacement, markup=True)

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
