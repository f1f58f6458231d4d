"""Moderation rules and the action table.

Owns what is checked on every incoming message and how the findings become
one decision. A rule only *detects*: it returns ``Hit``s, each with a reason
and the ``Span``s it matched. The action table (``[rules.actions]`` in
relay.toml, over ``DEFAULT_ACTIONS``) maps each rule to an ``Action``, and
``decide`` takes the strongest action among the hits (accept < hold < reject
< discard). Every hit is kept on the message, so a moderator can see why.

A rule is anything with a ``name`` and a ``check(mail, context)`` method; the
built-in ones are made by ``build_rules(config)``, which compiles every
pattern once, so call it when the configuration is loaded, not per message.
The text patterns themselves live in relay.detectors; what a message says is
read by relay.mailtext.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from relay.errors import ConfigError
from relay.mail.text import MailView as MailView
from relay.mail.text import Segment
from relay.rules import detectors
from relay.rules.base import Action as Action
from relay.rules.base import Hit as Hit
from relay.rules.base import Rule as Rule
from relay.rules.base import RuleContext as RuleContext
from relay.rules.base import Span as Span
from relay.rules.base import decide as decide
from relay.rules.detectors import automation_reason as automation_reason
from relay.rules.detectors import is_automated as is_automated
from relay.rules.identity import AuthenticationRule, IdentityPartsRule, OutsideRecipientsRule

log = logging.getLogger(__name__)


RULE_ERROR = "rule_error"
DEFAULT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "contact": Action.HOLD,
        "links": Action.HOLD,
        "attachments": Action.HOLD,
        "keywords": Action.HOLD,
        "new_pair": Action.HOLD,
        "watch": Action.HOLD,
        "rate": Action.HOLD,
        "autoreply": Action.DISCARD,
        "outside_recipients": Action.REJECT,
        "identity_parts": Action.HOLD,
        "authentication": Action.HOLD,
        RULE_ERROR: Action.HOLD,
    }
)
RULE_NAMES = frozenset(DEFAULT_ACTIONS) - {RULE_ERROR}


class RulesConfigError(ConfigError, ValueError):
    """The [rules] table is wrong; the message names the source and the key."""


@dataclass(frozen=True)
class RulesConfig:
    """The validated [rules] table; ``RulesConfig()`` is the default."""

    actions: Mapping[str, Action] = field(default_factory=lambda: DEFAULT_ACTIONS)
    disabled: frozenset[str] = frozenset()
    contact_detect: frozenset[str] = frozenset(detectors.CONTACT_KINDS)
    allow_domains: tuple[str, ...] = ()
    allow_types: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    new_pair_messages: int = 2
    rate_per_hour: int = 20
    trusted_authserv_id: str = ""  # the MTA in front whose Authentication-Results count

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], source: str, base_dir: Path | None = None
    ) -> RulesConfig:
        """Validate a parsed ``[rules]`` table; ``files`` are read relative to ``base_dir``."""
        return _Reader(source, base_dir or Path(".")).read(mapping)


_SECTIONS: Mapping[str, frozenset[str]] = {
    "contact": frozenset({"detect"}),
    "links": frozenset({"allow_domains"}),
    "attachments": frozenset({"allow_types"}),
    "keywords": frozenset({"phrases", "files"}),
    "new_pair": frozenset({"messages"}),
    "rate": frozenset({"per_hour"}),
    "watch": frozenset(),
    "autoreply": frozenset(),
    "outside_recipients": frozenset(),
    "identity_parts": frozenset(),
    "authentication": frozenset({"trusted_authserv_id"}),
}
_CONTENT_TYPE = re.compile(r"[a-z0-9][\w.+-]*/(?:\*|[a-z0-9][\w.+-]*)")


class _Reader:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source, self.base_dir = source, base_dir

    def fail(self, key: str, problem: str) -> RulesConfigError:
        return RulesConfigError(f"{self.source}: rules.{key}: {problem}")

    def table(self, value: object, key: str, known: Iterable[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        for name in value:
            if name not in known:
                raise self.fail(f"{key}.{name}" if key else name, "unknown key")
        return value

    def strings(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return tuple(v.strip() for v in value)

    def count(self, value: object, key: str, minimum: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(key, f"expected a whole number of at least {minimum}")
        return value

    def text(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "expected a string")
        return value.strip()

    def rule_names(self, names: Iterable[str], key: str) -> None:
        for name in names:
            if name not in DEFAULT_ACTIONS:
                raise self.fail(
                    key, f"unknown rule {name!r} (known: {', '.join(sorted(RULE_NAMES))})"
                )

    def read(self, mapping: Mapping[str, Any]) -> RulesConfig:
        top = self.table(mapping, "", {"actions", "disable", *_SECTIONS})
        sections = {
            name: self.table(top.get(name, {}), name, _SECTIONS[name]) for name in _SECTIONS
        }
        actions = dict(DEFAULT_ACTIONS)
        table = self.table(top.get("actions", {}), "actions", DEFAULT_ACTIONS)
        for rule, value in table.items():
            if not isinstance(value, str):
                raise self.fail(f"actions.{rule}", "expected accept, hold, reject or discard")
            try:
                actions[rule] = Action.parse(value)
            except ValueError:
                raise self.fail(
                    f"actions.{rule}", f"unknown action {value!r} (accept, hold, reject, discard)"
                ) from None
        disabled = self.strings(top.get("disable", []), "disable")
        self.rule_names(disabled, "disable")
        detect = self.strings(
            sections["contact"].get("detect", list(detectors.CONTACT_KINDS)), "contact.detect"
        )
        for kind in detect:
            if kind not in detectors.CONTACT_KINDS:
                raise self.fail(
                    "contact.detect",
                    f"unknown kind {kind!r} ({', '.join(detectors.CONTACT_KINDS)})",
                )
        domains = self.strings(sections["links"].get("allow_domains", []), "links.allow_domains")
        types = self.strings(
            sections["attachments"].get("allow_types", []), "attachments.allow_types"
        )
        for ctype in types:
            if not _CONTENT_TYPE.fullmatch(ctype.lower()):
                raise self.fail(
                    "attachments.allow_types",
                    f"{ctype!r} is not a content type like image/png or image/*",
                )
        keywords = sections["keywords"]
        phrases = list(self.strings(keywords.get("phrases", []), "keywords.phrases"))
        for name in self.strings(keywords.get("files", []), "keywords.files"):
            phrases.extend(self.phrase_file(name))
        return RulesConfig(
            actions=MappingProxyType(actions),
            disabled=frozenset(disabled),
            contact_detect=frozenset(detect),
            allow_domains=tuple(d.lower().removeprefix("*.").strip(".") for d in domains if d),
            allow_types=tuple(t.lower() for t in types),
            phrases=tuple(p for p in phrases if p),
            new_pair_messages=self.count(
                sections["new_pair"].get("messages", 2), "new_pair.messages", 0
            ),
            rate_per_hour=self.count(sections["rate"].get("per_hour", 20), "rate.per_hour", 1),
            trusted_authserv_id=self.text(
                sections["authentication"].get("trusted_authserv_id", ""),
                "authentication.trusted_authserv_id",
            ),
        )

    def phrase_file(self, name: str) -> list[str]:
        path = self.base_dir / name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail("keywords.files", f"cannot read {str(path)!r}: {exc}") from None
        return [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]


def _span(segment: Segment, start: int, end: int) -> Span:
    s, e = segment.source_range(start, end)
    return Span(segment.part, s, e, segment.source[s:e], segment.where)


def _group(rule: str, found: Iterable[tuple[str, Span]]) -> list[Hit]:
    """One hit per reason, its spans in message order, duplicates dropped."""
    by_reason: dict[str, set[Span]] = {}
    for reason, span in found:
        by_reason.setdefault(reason, set()).add(span)
    return [Hit(rule, reason, tuple(sorted(spans))) for reason, spans in by_reason.items()]


# --- content rules -------------------------------------------------------------


class ContactRule:
    """Contact details and invitations to continue the conversation elsewhere."""

    name = "contact"

    def __init__(self, detect: frozenset[str]) -> None:
        self._reasons = {detectors.CONTACT_KINDS[kind] for kind in detect}

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allowed = frozenset(a.lower() for a in (*context.allowed_addresses, context.pair_address))
        found = []
        for segment in mail.segments():
            for f in detectors.find_contacts(segment.text, allowed):
                if f.reason in self._reasons:
                    found.append((f.reason, _span(segment, f.start, f.end)))
        return _group(self.name, found)


class LinksRule:
    """Links to any site outside the allow-list (the relay's own domain is allowed)."""

    name = "links"

    def __init__(self, allow_domains: Sequence[str]) -> None:
        self._allow = tuple(allow_domains)

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        allow = (*self._allow, context.relay_domain.lower())
        found: list[tuple[str, Span]] = []
        for segment in mail.segments("text", "href", "subject"):
            if segment.kind == "href":
                link = detectors.href_link(segment.text)
                links = [link] if link else []
            else:
                links = detectors.find_links(segment.text)
            for f in links:
                if not detectors.host_allowed(f.detail, allow):
                    found.append((f.detail or "unknown host", _span(segment, f.start, f.end)))
        if not found:
            return []
        hosts = sorted({host for host, _ in found})
        return _group(self.name, (("link to " + ", ".join(hosts), span) for _, span in found))


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
        self._matcher = detectors.PhraseMatcher(phrases)

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        if not self._matcher:
            return []
        found = [
            (f"keyword: {phrase}", _span(segment, start, end))
            for segment in mail.segments("text", "subject", "filename")
            for start, end, phrase in self._matcher.finditer(segment.text)
        ]
        return _group(self.name, found)


# --- context rules ---------------------------------------------------------------


class NewPairRule:
    """The first messages each side of a pair sends."""

    name = "new_pair"

    def __init__(self, messages: int) -> None:
        self._messages = messages

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        n = context.messages_from_sender_in_pair
        if n >= self._messages:
            return []
        reason = f"message {n + 1} of the first {self._messages} from the {context.sender_role}"
        return [Hit(self.name, reason)]


class WatchRule:
    """Every message of a participant or pair marked for moderation."""

    name = "watch"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        return [Hit(self.name, "sender or pair is watched")] if context.watched else []


class RateRule:
    """A sender writing more than ``per_hour`` messages in an hour."""

    name = "rate"

    def __init__(self, per_hour: int) -> None:
        self._per_hour = per_hour

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        if context.sender_messages_last_hour < self._per_hour:
            return []
        count = context.sender_messages_last_hour + 1
        return [Hit(self.name, f"{count} messages in the last hour (limit {self._per_hour})")]


class AutoreplyRule:
    """Auto-replies, bulk mail, bounces, and the relay's own mail looping back."""

    name = "autoreply"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        reason = detectors.automation_reason(mail.message, context.loop_id)
        return [Hit(self.name, reason)] if reason else []


# --- assembly --------------------------------------------------------------------


def build_rules(config: RulesConfig | None = None) -> list[Rule]:
    """The enabled built-in rules, patterns compiled for this configuration."""
    config = config or RulesConfig()
    every: list[Rule] = [
        AutoreplyRule(),
        ContactRule(config.contact_detect),
        LinksRule(config.allow_domains),
        AttachmentsRule(config.allow_types),
        KeywordsRule(config.phrases),
        NewPairRule(config.new_pair_messages),
        WatchRule(),
        RateRule(config.rate_per_hour),
        OutsideRecipientsRule(),
        IdentityPartsRule(),
    ]
    if config.trusted_authserv_id:
        every.append(AuthenticationRule(config.trusted_authserv_id))
    return [rule for rule in every if rule.name not in config.disabled]


def run_rules(rules: Iterable[Rule], mail: MailView, context: RuleContext) -> list[Hit]:
    """Every hit of every rule, in rule order.

    A rule that raises becomes a ``rule_error`` hit (held by default) rather
    than an exception: a broken rule must neither crash intake nor let the
    message through unchecked.
    """
    hits: list[Hit] = []
    for rule in rules:
        try:
            hits.extend(rule.check(mail, context))
        except Exception as exc:
            log.exception("rule %s failed", rule.name)
            hits.append(Hit(RULE_ERROR, f"rule {rule.name} failed: {type(exc).__name__}"))
    return hits
