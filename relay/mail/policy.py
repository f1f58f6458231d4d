"""The email policy every message the relay parses is read with.

It is the stdlib's ``policy.default`` (RFC 5322 headers, EmailMessage, the
content manager) with one change: a parsed header is remembered. The
default policy parses a header's raw text again each time it is fetched,
and the relay fetches the same few (Content-Type above all) many times per
message while rules, scrubbing and rewriting walk the parts; the same goes
for the headers the relay sets (a short ASCII one is kept as written until it
is read). A header the structured parsers cannot read
at all is read as unstructured text rather than raising in the middle of
intake. Header objects are immutable, so sharing
one between fetches, and between messages with the same header text, is safe.

The stdlib's header registry also builds a new class for every header it
parses (``type(...)`` in ``HeaderRegistry.__getitem__``); that class depends
only on the header's name, so it is built once per name here.

Folding a parsed header for the wire walks its parse tree again each time;
the relay writes the same Content-Type, MIME-Version and
Content-Transfer-Encoding objects into message after message, so a header
object keeps what it folded to under each set of folding options
(``SMTP_POLICY`` is the outbound one).
"""

from __future__ import annotations

import functools
import re
from email.headerregistry import AddressHeader, BaseHeader, MessageIDHeader, UnstructuredHeader
from email.message import Message
from email.policy import EmailPolicy
from typing import Any

CACHED_HEADERS = 4096
CACHED_HEADER_CLASSES = 512  # header names; a message may invent any number
SHORT_HEADER = 78  # RFC 5322's line length, the SMTP policy's max_line_length

# One msg-id, a dot-atom on each side (RFC 5322 3.6.4 without the obsolete forms): the
# header parser reads it with no defect and prints it back exactly (the relay's own
# ids, and what mail clients write).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")


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
        if isinstance(value, str) and not hasattr(value, "name"):
            if "\n" in value or "\r" in value:
                return super().header_store_parse(name, value)  # refused: header injection
            if (
                value
                and value.isascii()
                and len(name) + 2 + len(value) <= SHORT_HEADER
                and _kept_as_written(self.header_factory, name.lower(), value)
            ):
                # Kept as written: the generator writes a short ASCII value as it stands,
                # which is what folding its parse gives, and a reader parses it when it
                # first fetches it. The relay sets most of a forward's headers this way.
                return (name, value)
            return (name, _parse(self.header_factory, name, value))
        return super().header_store_parse(name, value)

    def header_max_count(self, name: str) -> int | None:
        # Asked on every header set; the stdlib would build the header's class again.
        return _header_class(self.header_factory, name.lower()).max_count  # type: ignore[no-any-return]

    def fold_binary(self, name: str, value: Any) -> bytes:
        if not hasattr(value, "name"):
            return super().fold_binary(name, value)
        # What the folding reads of the policy; a parsed header ignores `name`.
        options = (self.max_line_length, self.linesep, self.utf8, self.cte_type)
        folds: dict[tuple[Any, ...], bytes] = value.__dict__.setdefault("_relay_folds", {})
        folded = folds.get(options)
        if folded is None:
            folded = folds[options] = super().fold_binary(name, value)
        return folded


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _parse(factory: Any, name: str, value: str) -> BaseHeader:
    # What EmailPolicy.header_fetch_parse does: unfold, then build the header object.
    unfolded = "".join(value.splitlines()) if ("\n" in value or "\r" in value) else value
    try:
        return _header_class(factory, name.lower())(name, unfolded)  # type: ignore[no-any-return]
    except Exception:
        # The stdlib's structured parsers still raise on some garbage (IndexError on
        # "Message-ID: <<<>>>"); such a header is read as plain text instead.
        return _header_class(factory, _UNSTRUCTURED)(name, unfolded)  # type: ignore[no-any-return]


def _kept_as_written(factory: Any, lowered_name: str, value: str) -> bool:
    if _parse_is_lossless(factory, lowered_name):
        return True
    # A Message-ID holding one plain id (the relay's own, on every forward) prints back as
    # written, and so folds to it when short; "=?" could start an encoded word.
    return (
        _is_message_id(factory, lowered_name)
        and _PLAIN_MESSAGE_ID.fullmatch(value) is not None
        and "=?" not in value
    )


def message_id_text(message: Message) -> str:
    """``str(message.get("Message-ID", ""))``, without parsing a plain one.

    The first Message-ID as received, when it is one plain id: the parser would
    print exactly that back. Anything else is parsed as before.
    """
    for name, value in message.raw_items():
        if name.lower() == "message-id":
            # A folded value holds white space, so it is never plain: no unfolding needed.
            if isinstance(value, str) and _PLAIN_MESSAGE_ID.fullmatch(value) and "=?" not in value:
                return value
            break
    return str(message.get("Message-ID", ""))


@functools.lru_cache(maxsize=CACHED_HEADER_CLASSES)
def _is_message_id(factory: Any, lowered_name: str) -> bool:
    return issubclass(_header_class(factory, lowered_name), MessageIDHeader)


@functools.lru_cache(maxsize=CACHED_HEADER_CLASSES)
def _parse_is_lossless(factory: Any, lowered_name: str) -> bool:
    # Unstructured and address headers print back exactly as written; a Date, a
    # Message-ID or a Content-Type may not (an unreadable date prints empty, quotes
    # are added to parameters), so those are still parsed when set.
    return issubclass(_header_class(factory, lowered_name), (UnstructuredHeader, AddressHeader))


@functools.lru_cache(maxsize=CACHED_HEADER_CLASSES)
def _header_class(factory: Any, lowered_name: str) -> Any:
    # What factory(name, value) does before parsing: a class made for the name.
    return factory[lowered_name]


_UNSTRUCTURED = "x-mentor-relay-unstructured"  # any name the registry has no class for


POLICY = CachingPolicy()
SMTP_POLICY = POLICY.clone(linesep="\r\n")  # the stdlib's policy.SMTP, with the caches
