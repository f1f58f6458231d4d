"""Rules that read the pair's history rather than the text: new pair, watch, rate."""

from __future__ import annotations

from relay.mail.text import MailView
from relay.rules.base import Hit, RuleContext


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


class PausedRule:
    """Every message of a paused pair (a coordinator or an escalation paused it)."""

    name = "paused"

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        return [Hit(self.name, "the pair is paused")] if context.paused else []


class RateRule:
    """A sender writing more than ``per_hour`` messages in an hour."""

    name = "rate"

    def __init__(self, per_hour: int) -> None:
        self._per_hour = per_hour

    def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
        # The count stops at the limit (relay.store.counters): at it, this message is
        # one more than the limit allows, however many came before.
        if context.sender_messages_last_hour < self._per_hour:
            return []
        limit = self._per_hour
        return [Hit(self.name, f"more than {limit} messages in the last hour (limit {limit})")]
