"""The [rules] table of relay.toml: which rules run, with what, and what each hit does.

``RulesConfig`` is the validated table; ``DEFAULT_ACTIONS`` maps each rule to an
``Action`` (accept < hold < reject < discard < escalate) and ``[rules.actions]`` overrides it.
An unknown rule, key or value is a ``RulesConfigError`` naming the source and key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from relay.errors import ConfigError
from relay.rules.base import Action
from relay.rules.detectors.kinds import CONTACT_KINDS

RULE_ERROR = "rule_error"
DEFAULT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "contact": Action.HOLD,
        "links": Action.HOLD,
        "attachments": Action.HOLD,
        "keywords": Action.HOLD,
        "new_pair": Action.HOLD,
        "watch": Action.HOLD,
        "paused": Action.HOLD,
        "rate": Action.HOLD,
        "autoreply": Action.DISCARD,
        "outside_recipients": Action.REJECT,
        "identity_parts": Action.HOLD,
        "authentication": Action.HOLD,
        "safeguarding": Action.ESCALATE,
        RULE_ERROR: Action.HOLD,
    }
)
RULE_NAMES = frozenset(DEFAULT_ACTIONS) - {RULE_ERROR}
# Rules a programme may neither disable nor weaken below hold: a paused pair is
# paused for someone's safety, and only a person may let its mail through.
AT_LEAST_HOLD = frozenset({"paused"})
AUTHENTICATION_MODES = ("verify", "trust-front", "off")


RemoteContent = Literal["hold", "strip"]
REMOTE_CONTENT_CHOICES = ("hold", "strip")


class RulesConfigError(ConfigError, ValueError):
    """The [rules] table is wrong; the message names the source and the key."""


@dataclass(frozen=True)
class RulesConfig:
    """The validated [rules] table; ``RulesConfig()`` is the default."""

    actions: Mapping[str, Action] = field(default_factory=lambda: DEFAULT_ACTIONS)
    disabled: frozenset[str] = frozenset()
    contact_detect: frozenset[str] = frozenset(CONTACT_KINDS)
    allow_domains: tuple[str, ...] = ()
    remote_content: RemoteContent = "hold"  # remote images and CSS: a links hit, or removed
    allow_types: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    new_pair_messages: int = 2
    rate_per_hour: int = 20
    trusted_authserv_id: str = ""  # the MTA in front whose Authentication-Results count
    # "verify", "trust-front", "off", or "" (decided by relay.config from where [smtp] listens)
    authentication_mode: str = ""
    nameservers: tuple[str, ...] = ()  # DNS servers for "verify"; empty: /etc/resolv.conf
    dns_port: int = 53
    dns_timeout: int = 5  # seconds, per lookup

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], source: str, base_dir: Path | None = None
    ) -> RulesConfig:
        """Validate a parsed ``[rules]`` table; ``files`` are read relative to ``base_dir``."""
        return _Reader(source, base_dir or Path(".")).read(mapping)


_SECTIONS: Mapping[str, frozenset[str]] = {
    "contact": frozenset({"detect"}),
    "links": frozenset({"allow_domains", "remote_content"}),
    "attachments": frozenset({"allow_types"}),
    "keywords": frozenset({"phrases", "files"}),
    "new_pair": frozenset({"messages"}),
    "rate": frozenset({"per_hour"}),
    "watch": frozenset(),
    "paused": frozenset(),
    "autoreply": frozenset(),
    "outside_recipients": frozenset(),
    "identity_parts": frozenset(),
    "authentication": frozenset({"mode", "trusted_authserv_id", "nameservers", "port", "timeout"}),
    "safeguarding": frozenset(),
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
                raise self.fail(
                    f"actions.{rule}", "expected accept, hold, reject, discard or escalate"
                )
            try:
                actions[rule] = Action.parse(value)
            except ValueError:
                raise self.fail(
                    f"actions.{rule}",
                    f"unknown action {value!r} (accept, hold, reject, discard, escalate)",
                ) from None
        for rule in AT_LEAST_HOLD:
            if actions[rule] < Action.HOLD:
                raise self.fail(f"actions.{rule}", "must hold or stronger")
        disabled = self.strings(top.get("disable", []), "disable")
        self.rule_names(disabled, "disable")
        for rule in AT_LEAST_HOLD.intersection(disabled):
            raise self.fail("disable", f"{rule} cannot be disabled")
        detect = self.strings(
            sections["contact"].get("detect", list(CONTACT_KINDS)), "contact.detect"
        )
        for kind in detect:
            if kind not in CONTACT_KINDS:
                raise self.fail(
                    "contact.detect",
                    f"unknown kind {kind!r} ({', '.join(CONTACT_KINDS)})",
                )
        domains = self.strings(sections["links"].get("allow_domains", []), "links.allow_domains")
        remote = self.text(sections["links"].get("remote_content", "hold"), "links.remote_content")
        if remote not in REMOTE_CONTENT_CHOICES:
            raise self.fail("links.remote_content", f'expected "hold" or "strip", got {remote!r}')
        types = self.strings(
            sections["attachments"].get("allow_types", []), "attachments.allow_types"
        )
        for ctype in types:
            if not _CONTENT_TYPE.fullmatch(ctype.lower()):
                raise self.fail(
                    "attachments.allow_types",
                    f"{ctype!r} is not a content type like image/png or image/*",
                )
        authentication = sections["authentication"]
        mode = self.text(authentication.get("mode", ""), "authentication.mode")
        if mode and mode not in AUTHENTICATION_MODES:
            raise self.fail(
                "authentication.mode", f"expected one of {', '.join(AUTHENTICATION_MODES)}"
            )
        trusted = self.text(
            authentication.get("trusted_authserv_id", ""), "authentication.trusted_authserv_id"
        )
        if mode == "trust-front" and not trusted:
            raise self.fail("authentication.mode", '"trust-front" needs trusted_authserv_id')
        keywords = sections["keywords"]
        phrases = list(self.strings(keywords.get("phrases", []), "keywords.phrases"))
        for name in self.strings(keywords.get("files", []), "keywords.files"):
            phrases.extend(self.phrase_file(name))
        return RulesConfig(
            actions=MappingProxyType(actions),
            disabled=frozenset(disabled),
            contact_detect=frozenset(detect),
            allow_domains=tuple(d.lower().removeprefix("*.").strip(".") for d in domains if d),
            remote_content="strip" if remote == "strip" else "hold",
            allow_types=tuple(t.lower() for t in types),
            phrases=tuple(p for p in phrases if p),
            new_pair_messages=self.count(
                sections["new_pair"].get("messages", 2), "new_pair.messages", 0
            ),
            rate_per_hour=self.count(sections["rate"].get("per_hour", 20), "rate.per_hour", 1),
            trusted_authserv_id=trusted,
            authentication_mode=mode,
            nameservers=self.strings(
                authentication.get("nameservers", []), "authentication.nameservers"
            ),
            dns_port=self.count(authentication.get("port", 53), "authentication.port", 1),
            dns_timeout=self.count(authentication.get("timeout", 5), "authentication.timeout", 1),
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
