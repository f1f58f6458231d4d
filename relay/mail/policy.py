"""The email policy every message the relay parses is read with.

It is the stdlib's ``policy.default`` (RFC 5322 headers, EmailMessage, the
content manager) with one change: a parsed header is remembered. The
default policy parses a header's raw text again each time it is fetched,
and the relay fetches the same few (Content-Type above all) many times per
message while rules, scrubbing and rewriting walk the parts; the same goes
for the headers the relay sets. A header the structured parsers cannot read
at all is read as unstructured text rather than raising in the middle of
intake. Header objects are immutable, so sharing
one between fetches, and between messages with the same header text, is safe.
"""

from __future__ import annotations

import functools
from email.headerregistry import BaseHeader
from email.policy import EmailPolicy
from typing import Any

CACHED_HEADERS = 4096


class CachingPolicy(EmailPolicy):
    def __deepcopy__(self, memo: dict[int, Any]) -> CachingPolicy:
        # A policy is immutable. Copied along with a message (rewrite deep-copies the
        # original), it would bring a new header_factory, and the cache below, keyed
        # by the factory, would miss for every header the copy sets.
        return self

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        return _parse(self.header_factory, name, value)

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, str) and "\n" not in value and "\r" not in value:
            return (name, _parse(self.header_factory, name, value))
        return super().header_store_parse(name, value)


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _parse(factory: Any, name: str, value: str) -> BaseHeader:
    # What EmailPolicy.header_fetch_parse does: unfold, then build the header object.
    unfolded = "".join(value.splitlines()) if ("\n" in value or "\r" in value) else value
    try:
        return factory(name, unfolded)  # type: ignore[no-any-return]
    except Exception:
        # The stdlib's structured parsers still raise on some garbage (IndexError on
        # "Message-ID: <<<>>>"); such a header is read as plain text instead.
        return factory[_UNSTRUCTURED](name, unfolded)  # type: ignore[no-any-return]


_UNSTRUCTURED = "x-mentor-relay-unstructured"  # any name the registry has no class for


POLICY = CachingPolicy()
