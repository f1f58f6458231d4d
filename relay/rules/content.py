"""Rules that read what a message says: contact details, links, attachments, keywords.

Each wraps a detector from relay.rules.detectors and turns its offsets into
``Span``s of the message, one ``Hit`` per reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from relay.mail import html
from relay.mail.text import MailView, Segment
from relay.rules.base import Hit, RuleContext, Span
from relay.rules.detectors import contacts
from relay.rules.detectors import links as link_detectors
from relay.rules.detectors.kinds import CONTACT_KINDS
from relay.rules.detectors.text import PhraseMatcher


def _span(segment: Segment, start: int, end: int) -> Span:
    s, e = segment.source_range(start, end)
    return Span(segment.part, s, e, segment.source[s:e], segment.where)


def _group(rule: str, found: Iterable[tuple[str, Span]]) -> list[Hit]:
    """One hit per reason, its spans in message order, duplicates dropped."""
    by_reason: dict[str, set[Span]] = {}
    for reason, span in found:
        by_reason.setdefault(reason, set()).add(span)
    return [Hit(rule, reason, tuple(sorted(spans))) for reason, spans in by_reason.items()]


class ContactRule:
    """Contact details and invitations to continue the conversation elsewhere."""

    name = "contact"

    def __init__(self, detect: frozenset[str]) -> None:
        self._reasons = {CONTACT_KINDS[kind] for kind in detect}

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allowed = frozenset(a.lower() for a in (*context.allowed_addresses, context.pair_address))
        found = []
        for segment in mail.segments():
            for f in contacts.find_contacts(segment.text, allowed):
                if f.reason in self._reasons:
                    found.append((f.reason, _span(segment, f.start, f.end)))
        return _group(self.name, found)


class LinksRule:
    """Links to any site outside the allow-list (the relay's own domain is allowed).

    Also, unless [rules.links] remote_content = "strip" removes them from the
    copy that is sent, what an HTML body makes a client load by itself when it
    is opened (remote images, CSS url()), from any host but the relay's: it
    tells the sender when, where and with what the message was read.
    """

    name = "links"

    def __init__(self, allow_domains: Sequence[str], remote_content: str = "hold") -> None:
        self._allow = tuple(allow_domains)
        self._report_remote = remote_content != "strip"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allow = (*self._allow, context.relay_domain.lower())
        found: list[tuple[str, Span]] = []
        for segment in mail.segments("text", "href", "subject"):
            if segment.kind == "href":
                link = link_detectors.href_link(segment.text)
                links = [link] if link else []
            else:
                links = link_detectors.find_links(segment.text)
            for f in links:
                if not link_detectors.host_allowed(f.detail, allow):
                    found.append((f.detail or "unknown host", _span(segment, f.start, f.end)))
        hits = _group(self.name, (("link to " + _hosts(found), span) for _, span in found))
        if self._report_remote:
            hits += self._remote(mail, context.relay_domain.lower())
        return hits

    def _remote(self, mail: MailView, relay_domain: str) -> list[Hit]:
        found: list[tuple[str, Span]] = []
        for part in mail.parts:
            if part.content_type != "text/html" or not _may_load_remote(part.text):
                continue
            for url in html.remote_references(part.text):
                host = html.remote_host(url)
                if link_detectors.host_allowed(host, (relay_domain,)):
                    continue
                start = part.text.find(url)
                span = (
                    Span(part.index, start, start + len(url), url)
                    if start >= 0
                    else Span(part.index, 0, 0, url, "part")
                )
                found.append((host, span))
        if not found:
            return []
        reason = "remote content loaded when opened, from " + _hosts(found)
        return _group(self.name, ((reason, span) for _, span in found))


def _may_load_remote(source: str) -> bool:
    """Whether html.remote_references could find anything in ``source`` (nh3 is dearer).

    It finds the src of an img element and url(...) in a style attribute, so
    the source must hold "<img" (or "<image", which HTML reads as img) or both
    "style" and "url(" (tag and attribute names in any case; in a value,
    "url(" may be spelled with character references, "&#..." or "&lpar;").
    Text nh3 cannot take (lone surrogates) goes to it anyway, to fail as before.
    """
    low = source.lower()
    if "<img" in low or "<image" in low:
        return True
    if "style" in low and ("url" in low or "&#" in low or "&lpar" in low):
        return True
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _hosts(found: Sequence[tuple[str, Span]]) -> str:
    return ", ".join(sorted({host for host, _ in found}))


class AttachmentsRule:
    """Attachments and inline pictures whose type is not on the allow-list."""

    name = "attachments"

    def __init__(self, allow_types: Sequence[str]) -> None:
        self._allow = tuple(allow_types)

    def _allowed(self, content_type: str) -> bool:
        major = content_type.split("/", 1)[0] + "/*"
        return content_type in self._allow or major in self._allow

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        flagged = [a for a in mail.attachments if not self._allowed(a.content_type)]
        if not flagged:
            return []
        names = ", ".join(f"{a.filename or 'unnamed'} ({a.content_type})" for a in flagged)
        spans = tuple(Span(a.index, 0, 0, a.filename, "part") for a in flagged)
        return [Hit(self.name, f"attachment: {names}", spans)]


class KeywordsRule:
    """Configured phrases, seen through case, accents, spacing and look-alikes."""

    name = "keywords"

    def __init__(self, phrases: Sequence[str]) -> None:
        self._matcher = PhraseMatcher(phrases)

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        if not self._matcher:
            return []
        found = [
            (f"keyword: {phrase}", _span(segment, start, end))
            for segment in mail.segments("text", "subject", "filename")
            for start, end, phrase in self._matcher.finditer(segment.text)
        ]
        return _group(self.name, found)
