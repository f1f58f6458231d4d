"""The vocabulary of moderation: actions, hits and their spans, the rule contract.

Owns the small types every rule and every reader of rule results shares, so
that rules, intake, moderation and the privacy rules can all import them
without importing each other. relay.rules builds the built-in rules and
re-exports these names.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # only the rule contract names it; relay.config loads this module
    from relay.mail.text import MailView


class Action(enum.IntEnum):
    """What happens to a message; a larger value is a stronger action."""

    ACCEPT = 0
    HOLD = 1
    REJECT = 2
    DISCARD = 3
    # Held, the pair paused, a concern opened and the safeguarding leads alerted at once.
    ESCALATE = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Action:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown action {name!r}") from None


Where = Literal["body", "subject", "filename", "part"]
_WHERE: tuple[Where, ...] = ("body", "subject", "filename", "part")


@dataclass(frozen=True, order=True)
class Span:
    """Where a rule matched: ``text == <decoded part text>[start:end]``.

    ``where`` says what the offsets index: "body" the decoded text of part
    number ``part`` of ``msg.walk()`` (HTML source for an HTML part),
    "subject" the decoded Subject, "filename" the decoded file name of part
    ``part``; "part" marks a whole part (an attachment) and has no offsets.
    """

    part: int
    start: int
    end: int
    text: str
    where: Where = "body"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Span:
        where = data.get("where", "body")
        ints = [data.get(k) for k in ("part", "start", "end")]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ints):
            raise ValueError(f"span needs integer part, start and end: {data!r}")
        if not isinstance(data.get("text"), str) or where not in _WHERE:
            raise ValueError(f"span needs text and a known 'where': {data!r}")
        return cls(data["part"], data["start"], data["end"], data["text"], where)


@dataclass(frozen=True)
class Hit:
    """One finding of one rule: why, and where in the message."""

    rule: str
    reason: str
    spans: tuple[Span, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"spans": [s.to_json() for s in self.spans]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hit:
        rule, reason, spans = data.get("rule"), data.get("reason"), data.get("spans", [])
        if not isinstance(rule, str) or not isinstance(reason, str) or not isinstance(spans, list):
            raise ValueError(f"hit needs rule, reason and a list of spans: {data!r}")
        return cls(rule, reason, tuple(Span.from_json(s) for s in spans))


@dataclass(frozen=True)
class RuleContext:
    """What the store knows about the sender and pair; the caller fills it in.

    Counts are of *earlier* messages, not including the one being checked.
    """

    pair_address: str
    relay_domain: str
    sender_role: Literal["mentor", "mentee"]
    messages_from_sender_in_pair: int = 0
    sender_messages_last_hour: int = 0
    watched: bool = False
    paused: bool = False  # the pair is paused: everything either side writes waits
    allowed_addresses: frozenset[str] = frozenset()
    own_loop_id: str = ""  # empty: the relay domain

    @property
    def loop_id(self) -> str:
        return self.own_loop_id or self.relay_domain


class Rule(Protocol):
    """The whole contract of a rule, built-in or not."""

    name: str

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]: ...


def decide(hits: Iterable[Hit], actions: Mapping[str, Action]) -> Action:
    """The strongest action among the hits; a rule missing from the table holds."""
    return max((actions.get(hit.rule, Action.HOLD) for hit in hits), default=Action.ACCEPT)


def reasons_for(action: Action, hits: Iterable[Hit], actions: Mapping[str, Action]) -> list[str]:
    """The reasons of the hits that called for ``action`` or more: a hold (a new pair,
    say) is no reason to give for a refusal."""
    return [hit.reason for hit in hits if actions.get(hit.rule, Action.HOLD) >= action]
