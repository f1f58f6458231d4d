"""The rules as they were before issue 14's fifteenth pass: the reference its shortcuts keep to.

tests/rules/test_rules_same_hits.py runs a varied corpus through these and
through the current code and requires the same hits. Only what the pass
rewrote is kept here; everything else is the current code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message

from relay.mail import html
from relay.mail.text import MailView
from relay.mail.tnef import is_tnef
from relay.rules import content
from relay.rules.automated import _FLAG_HEADERS, _PRECEDENCE_AUTOMATED, MAX_RECEIVED_HEADERS
from relay.rules.base import Hit, Rule, RuleContext, Span
from relay.rules.detectors import contacts as c
from relay.rules.detectors import links as link_detectors
from relay.rules.detectors import text as detector_text
from relay.rules.detectors.digits import Digits, finditer_windows, match_at
from relay.rules.detectors.kinds import EMAIL, HANDLE, OFFER, PHONE, POSTAL
from relay.rules.detectors.text import Found, finditer_near, positions, word_start
from relay.rules.engine import build_rules
from relay.rules.identity import IDENTITY_TYPES
from relay.rules.safeguarding import SafeguardingRule
from relay.rules.settings import RulesConfig


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value).strip()
    except Exception:
        return ""


def automation_reason(msg: Message, own_loop_id: str = "") -> str | None:
    """relay.rules.automated.automation_reason: one email.message lookup per header."""
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


class AutoreplyRule:
    name = "autoreply"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        reason = automation_reason(mail.message, context.loop_id)
        return [Hit(self.name, reason)] if reason else []


class LinksRule(content.LinksRule):
    """relay.rules.content.LinksRule: nh3 run on every HTML part for remote references."""

    def _remote(self, mail: MailView, relay_domain: str) -> list[Hit]:
        found: list[tuple[str, Span]] = []
        for part in mail.parts:
            if part.content_type != "text/html":
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
        reason = "remote content loaded when opened, from " + content._hosts(found)
        return content._group(self.name, ((reason, span) for _, span in found))


class IdentityPartsRule:
    """relay.rules.identity.IdentityPartsRule: is_tnef (the file name read again) on every part."""

    name = "identity_parts"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        found = []
        for index, part in enumerate(mail.message.walk()):
            kind = IDENTITY_TYPES.get(part.get_content_type())
            if kind is None and is_tnef(part):
                kind = IDENTITY_TYPES["application/ms-tnef"]
            if kind:
                found.append(
                    Hit(self.name, f"{kind} is attached", (Span(index, 0, 0, "", "part"),))
                )
        return found


class PhraseMatcher(detector_text.PhraseMatcher):
    """relay.rules.detectors.text.PhraseMatcher: no single search first on short texts."""

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        if self._regex is None:
            return
        folded, compact = detector_text._folded(text)
        search = self._searcher(compact)
        m = search(0)
        if m is None:
            return
        anchor = (0, 0)
        while m is not None:
            at, key = m
            start = detector_text._skip_gaps(folded, at - anchor[0], anchor[1])
            anchor = (at, start)
            end = detector_text._skip_gaps(folded, len(key) - 1, start) + 1
            bounded = (start == 0 or not text[start - 1].isalnum()) and (
                end == len(text) or not text[end].isalnum()
            )
            if bounded and end - start <= 4 * len(key) - 3:
                yield start, end, self._phrases[key]
                m = search(at + len(key))
            else:
                m = search(at + 1)


_MESSENGER_NAMES = PhraseMatcher(c.MESSENGERS)
_WEAK_MESSENGER = tuple(gated._replace(needs=()) for gated in c._WEAK_MESSENGER)
_OFFER = tuple(gated._replace(needs=()) for gated in c._OFFER)


def _may_spell_number(low: str) -> bool:
    at = [[*positions(low, word)] for word in c._NUMBER_WORDS]
    if sum(bool(found) for found in at) < 2:
        return False
    starts = sorted(i for found in at for i in found)
    return any(b - a <= c._SPELLED_SPAN for a, b in zip(starts, starts[2:], strict=False))


def _postal(text: str, digits: Digits) -> Iterator[re.Match[str]]:
    if not digits:
        return
    yield from c._STREET.finditer(text)
    yield from match_at(c._UK_POSTCODE, text, c._postcode_starts(digits))
    yield from match_at(c._US_ZIP, text, c._zip_starts(text, digits))


def find_contacts(text: str, allowed_addresses: frozenset[str] = frozenset()) -> list[Found]:
    """relay.rules.detectors.contacts.find_contacts before the pass."""
    low = detector_text.lower_keeping_offsets(text)
    found: list[Found] = []
    digits = Digits.of(text)
    phones = c._PHONE_CANDIDATE_NARROW if digits.ascii_only else c._PHONE_CANDIDATE
    for m in finditer_windows(phones, text, digits.windows(*c._PHONE_WINDOW), c._PHONE_REACH):
        if c._is_phone(m.group(), low[max(0, m.start() - 40) : m.start()]):
            found.append(Found(m.start(), m.end(), PHONE))
    if _may_spell_number(low):
        for m in c._SPELLED_PHONE.finditer(low):
            if word_start(low, m.start()) and len(c._LETTERS.findall(m.group())) >= 3:
                found.append(Found(m.start(), m.end(), PHONE))
    narrow = text.translate(c._WIDE_TO_ASCII) if any(at in text for at in c._WIDE_ATS) else text
    if "@" in narrow:
        for m in finditer_near(c._EMAIL, narrow, positions(narrow, "@")):
            address = m.group().rstrip(".").lower()
            if address not in allowed_addresses:
                found.append(Found(m.start(), m.start() + len(address), EMAIL))
        found += [Found(m.start(), m.end(), HANDLE) for m in c._AT_HANDLE.finditer(narrow)]
    if (
        " dot " in low
        or any(p in low for p in c._MAIL_PROVIDERS)
        or any(b.search(low) for b in c._BRACKET_AT)
    ):
        found += [Found(m.start(), m.end(), EMAIL) for m in c._OBFUSCATED_EMAIL.finditer(low)]
    for m in _postal(text, digits):
        if word_start(text, m.start()):
            found.append(Found(m.start(), m.end(), POSTAL))
    for start, end, _name in _MESSENGER_NAMES.finditer(text):
        found.append(Found(start, c._extend_to_handle(low, end), HANDLE))
    if any(word in low for word in c._WEAK_TRIGGERS):
        for weak in _WEAK_MESSENGER:
            for m in weak.finditer(low):
                if word_start(low, m.start()):
                    found.append(Found(m.start(), c._extend_to_handle(low, m.end()), HANDLE))
    for offer in _OFFER:
        for m in offer.finditer(low):
            if not word_start(low, m.start()):
                continue
            if m.group().startswith("call") and c._calls_me_by_name(text, m.end()):
                continue
            found.append(Found(m.start(), m.end(), OFFER))
    return found


class ContactRule(content.ContactRule):
    """relay.rules.content.ContactRule over the old find_contacts."""

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allowed = frozenset(a.lower() for a in (*context.allowed_addresses, context.pair_address))
        found = []
        for segment in mail.segments():
            for f in find_contacts(segment.text, allowed):
                if f.reason in self._reasons:
                    found.append((f.reason, content._span(segment, f.start, f.end)))
        return content._group(self.name, found)


def _old_safeguarding() -> SafeguardingRule:
    rule = SafeguardingRule()
    rule._matcher = PhraseMatcher(rule._family)
    return rule


def old_rules(config: RulesConfig | None = None) -> list[Rule]:
    """build_rules(config) with each rewritten rule in its old form."""
    config = config or RulesConfig()
    old: dict[str, Rule] = {
        "autoreply": AutoreplyRule(),
        "links": LinksRule(config.allow_domains, config.remote_content),
        "identity_parts": IdentityPartsRule(),
        "contact": ContactRule(config.contact_detect),
        "safeguarding": _old_safeguarding(),
    }
    return [old.get(rule.name, rule) for rule in build_rules(config)]
