"""The MIME tree walk of scrubbing: part headers, parameters, nested messages.

Owns what scrubbing does to everything around a part's text:
- part headers are kept by allow-list (Content-* only; a client's
  X-Attachment-Id or X-Mozilla-* goes), as the top level is by rewrite;
- a forwarded message inside (message/rfc822) keeps From, To, Cc, Date,
  Subject and its Content-* headers, with the participants' addresses
  replaced; its Received, Return-Path, Message-ID, DKIM-Signature, X-* and
  the rest are dropped, since they name hosts, machines and client IPs;
- Content-IDs become opaque ids on the relay's domain, and the HTML's
  ``cid:`` links follow, so inline pictures still show;
- parameters (file names, anything a client invents) lose the
  participants' addresses, and machine-made ones the participants' hosts;
  boundaries, preambles and epilogues are dropped, and every kept header
  is written anew from its parsed value (relay.outbound.reemit).
The text of each leaf is handed to the ``scrub_body`` relay.outbound.scrub
passes in, so this module depends only on relay.outbound.scrub_text and
relay.outbound.reemit.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Literal

from relay.mail.headerlist import keep_only
from relay.outbound.reemit import reemit_content_headers, relay_date
from relay.outbound.scrub_text import Scrubber

Kind = Literal["root", "part", "nested"]
BodyScrub = Callable[[EmailMessage, Scrubber, Callable[[str], str]], bool]

# A part's own headers that pass (written anew by relay.outbound.reemit); a
# client's X-*, Content-Class, Content-Base and the like do not.
PART_CONTENT_HEADERS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "content-description",
        "content-location",
        "content-language",
    }
)
NESTED_KEPT = frozenset({"from", "to", "cc", "date", "subject", "mime-version"})
_ADDRESS_HEADERS = ("From", "To", "Cc", "Subject")
_READABLE_PARAMS = frozenset({"filename", "name"})
_PARAM_HEADERS = ("Content-Type", "Content-Disposition")
_ENCODABLE_MESSAGES = frozenset({"message/rfc822", "message/global"})
_LINES = policy.default.clone(linesep="\n", max_line_length=0)


def scrub_tree(message: EmailMessage, scrubber: Scrubber, scrub_body: BodyScrub) -> int:
    """Scrub every part of message in place; returns how many leaf parts changed."""
    _decode_nested_messages(message)
    cids = {
        old: _opaque(scrubber, old, "cid") + "@" + scrubber.relay_domain
        for old in _content_ids(message)
    }
    walker = _Walker(scrubber, scrub_body, cids)
    walker.visit(message, "root")
    return walker.changed


def _decode_nested_messages(message: Message) -> None:
    """Parse forwarded messages a client sent base64 or quoted-printable encoded.

    RFC 2046 allows only 7bit, 8bit or binary for message/rfc822, but some
    clients encode .eml attachments anyway; the email package then sees the
    encoded text as the body of a message without headers, and the real
    headers and body would cross unread.
    """
    for part in message.walk():
        if part.get_content_type() not in _ENCODABLE_MESSAGES:
            continue
        cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        children = part.get_payload()
        if cte not in ("base64", "quoted-printable") or not isinstance(children, list):
            continue
        encoded = "".join(
            child.as_string(policy=_LINES) for child in children if isinstance(child, Message)
        )
        raw = (
            base64.b64decode(re.sub(r"[^A-Za-z0-9+/]", "", encoded) + "==")
            if cte == "base64"
            else quopri.decodestring(encoded.encode("utf-8", "surrogateescape"))
        )
        inner = message_from_bytes(raw, policy=policy.default)
        part.set_payload([inner])
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "7bit" if raw.isascii() else "8bit"


def _content_ids(message: Message) -> list[str]:
    found = []
    for part in message.walk():
        bare = _content_id_of(part)
        if bare:
            found.append(bare)
    return found


def _content_id_of(part: Message) -> str:
    """A part's Content-ID without its brackets; '' when it has none or it cannot be read."""
    try:
        value = part.get("Content-ID")
    except Exception:  # the header registry's failures are the input's fault, any kind
        return ""
    return "" if value is None else str(value).strip().strip("<>").strip()


def _opaque(scrubber: Scrubber, value: str, purpose: str) -> str:
    """A stable stand-in for value that cannot be read back without the hidden addresses."""
    key = "\0".join((purpose, *scrubber.addresses, value))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class _Walker:
    def __init__(self, scrubber: Scrubber, scrub_body: BodyScrub, cids: dict[str, str]) -> None:
        self.scrubber = scrubber
        self.scrub_body = scrub_body
        self.cids = cids
        self.cid_pattern = (
            re.compile(
                "cid:("
                + "|".join(re.escape(old) for old in sorted(cids, key=len, reverse=True))
                + ")",
                re.IGNORECASE,
            )
            if cids
            else None
        )
        self.changed = 0

    def visit(self, part: Message, kind: Kind) -> None:
        assert isinstance(part, EmailMessage)  # policy.default builds every part as one
        if kind != "root":
            self._headers(part, kind)
        self._content_id(part)
        for name in ("Content-Description", "Content-Location"):
            self._header_text(part, name)
        self._params(part)
        if part.is_multipart():
            # Text before the first and after the last boundary no client shows.
            part.preamble = part.epilogue = None
            children = part.get_payload()
            child_kind: Kind = "nested" if part.get_content_maintype() == "message" else "part"
            for child in children if isinstance(children, list) else []:
                if isinstance(child, Message):
                    self.visit(child, child_kind)
        elif self.scrub_body(part, self.scrubber, self._cid_links(part)):
            self.changed += 1
        if kind != "root":  # the root's are written by relay.outbound.rewrite
            reemit_content_headers(part)
        if kind == "nested" and "Date" in part:
            date = part.get("Date")
            del part["Date"]
            part["Date"] = relay_date(date)

    def _cid_links(self, part: EmailMessage) -> Callable[[str], str]:
        pattern = self.cid_pattern
        if pattern is None or part.get_content_type() != "text/html":
            return lambda text: text
        lowered = {old.lower(): new for old, new in self.cids.items()}
        return lambda text: pattern.sub(lambda m: "cid:" + lowered[m.group(1).lower()], text)

    def _headers(self, part: EmailMessage, kind: Kind) -> None:
        kept = NESTED_KEPT if kind == "nested" else frozenset({"mime-version"})
        keep_only(part, lambda name: name in kept or name in PART_CONTENT_HEADERS)
        if kind != "nested":
            return
        for name in _ADDRESS_HEADERS:
            self._header_text(part, name)

    def _header_text(self, part: EmailMessage, name: str) -> None:
        values = _readable_values(part, name)
        if values is None:  # a header nobody can read cannot be checked: it goes
            del part[name]
            return
        scrubbed = [self.scrubber.text(value) for value in values]
        if scrubbed != values:
            del part[name]
            for value in scrubbed:
                part[name] = value

    def _content_id(self, part: EmailMessage) -> None:
        if "Content-ID" not in part:
            return
        bare = _content_id_of(part)
        del part["Content-ID"]
        if bare in self.cids:
            part["Content-ID"] = f"<{self.cids[bare]}>"

    def _params(self, part: EmailMessage) -> None:
        for header in _PARAM_HEADERS:
            if header not in part:
                continue
            try:
                params = dict(part[header].params)
            except Exception:  # an unreadable header keeps its value; its text is still scrubbed
                continue
            for name, value in params.items():
                text = str(value)
                if name == "boundary":  # the generator writes the relay's own
                    continue
                scrub = self.scrubber.text if name in _READABLE_PARAMS else self.scrubber.hosts_too
                scrubbed = scrub(text)
                if scrubbed != text:
                    charset = None if scrubbed.isascii() else "utf-8"
                    part.set_param(name, scrubbed, header=header, charset=charset)


def _readable_values(part: EmailMessage, name: str) -> list[str] | None:
    """A header's values decoded (encoded words and all); None if one cannot be read."""
    try:
        return [str(value) for value in part.get_all(name, [])]
    except Exception:  # the header registry's failures are the input's fault, any kind
        return None
