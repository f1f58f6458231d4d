"""The safeguarding rule: disclosures of harm and grooming indicators, escalated by default.

Owns the shipped phrase list (relay/rules/data/safeguarding.txt, installed as
package data) and the rule that finds its phrases with the same folding as
the keyword rule (relay.rules.detectors.text.PhraseMatcher). Each hit names
its family ("self-harm", "secrecy", ...) so a lead sees at once what kind of
risk it is. The action table maps the rule to ``escalate``: held, pair
paused, concern opened, leads alerted (relay.safeguarding.escalation).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from relay.mail.text import MailView
from relay.rules.base import Hit, RuleContext
from relay.rules.content import _group, _span
from relay.rules.detectors.text import PhraseMatcher

PHRASE_FILE = "data/safeguarding.txt"


def read_families(text: str) -> dict[str, tuple[str, ...]]:
    """``[family]`` headings, each followed by one phrase a line; ``#`` starts a comment."""
    families: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = families.setdefault(line[1:-1].strip(), [])
        elif current is None:
            raise ValueError(f"phrase {line!r} before any [family] heading")
        else:
            current.append(line)
    return {family: tuple(phrases) for family, phrases in families.items()}


def shipped_families() -> dict[str, tuple[str, ...]]:
    text = resources.files("relay.rules").joinpath(PHRASE_FILE).read_text(encoding="utf-8")
    return read_families(text)


class SafeguardingRule:
    """Phrases a safeguarding lead must see, by family."""

    name = "safeguarding"

    def __init__(self, families: Mapping[str, tuple[str, ...]] | None = None) -> None:
        families = shipped_families() if families is None else families
        self._family = {phrase: family for family, each in families.items() for phrase in each}
        self._matcher = PhraseMatcher(self._family)

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        found = [
            (f"{self._family.get(phrase, 'safeguarding')}: {phrase}", _span(segment, start, end))
            for segment in mail.segments("text", "subject", "filename")
            for start, end, phrase in self._matcher.finditer(segment.text)
        ]
        return _group(self.name, found)
