"""The rules as they were before issue 14's fifteenth pass: the reference its shortcuts keep to.

tests/rules/test_rules_same_hits.py runs a varied corpus through these and
through the current code and requires the same hits. Only what the pass
rewrote is kept here; everything else is the current code.
"""

from __future__ import annotations

from email.message import Message

from relay.mail import html
from relay.mail.text import MailView
from relay.mail.tnef import is_tnef
from relay.rules import content
from relay.rules.automated import _FLAG_HEADERS, _PRECEDENCE_AUTOMATED, MAX_RECEIVED_HEADERS
from relay.rules.base import Hit, Rule, RuleContext, Span
from relay.rules.detectors import links as link_detectors
from relay.rules.engine import build_rules
from relay.rules.identity import IDENTITY_TYPES
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


def old_rules(config: RulesConfig | None = None) -> list[Rule]:
    """build_rules(config) with each rewritten rule in its old form."""
    config = config or RulesConfig()
    old: dict[str, Rule] = {
        "autoreply": AutoreplyRule(),
        "links": LinksRule(config.allow_domains, config.remote_content),
        "identity_parts": IdentityPartsRule(),
    }
    return [old.get(rule.name, rule) for rule in build_rules(config)]
