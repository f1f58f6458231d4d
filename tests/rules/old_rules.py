"""The rules as they were before issue 14's fifteenth pass: the reference its shortcuts keep to.

tests/rules/test_rules_same_hits.py runs a varied corpus through these and
through the current code and requires the same hits. Only what the pass
rewrote is kept here; everything else is the current code.
"""

from __future__ import annotations

from email.message import Message

from relay.mail.text import MailView
from relay.rules.automated import _FLAG_HEADERS, _PRECEDENCE_AUTOMATED, MAX_RECEIVED_HEADERS
from relay.rules.base import Hit, Rule, RuleContext
from relay.rules.engine import build_rules
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


def old_rules(config: RulesConfig | None = None) -> list[Rule]:
    """build_rules(config) with each rewritten rule in its old form."""
    old: dict[str, Rule] = {"autoreply": AutoreplyRule()}
    return [old.get(rule.name, rule) for rule in build_rules(config)]
