"""Running the moderation rules: which rules, in what order, and what a failing rule means.

Owns what is checked on every incoming message. A rule only *detects*: it
returns ``Hit``s, each with a reason and the ``Span``s it matched. The action
table (``[rules.actions]`` in relay.toml, over ``DEFAULT_ACTIONS``) maps each
rule to an ``Action``, and ``decide`` takes the strongest action among the hits
(accept < hold < reject < discard < escalate). Every hit is kept on the message, so a
moderator can see why.

A rule is anything with a ``name`` and a ``check(mail, context)`` method; the
built-in ones are made by ``build_rules(config)``, which compiles every pattern
once, so call it when the configuration is loaded, not per message. The rules
themselves live one family a module (content, pair_context, identity,
automated); their text patterns in relay.rules.detectors; what a message says
is read by relay.mail.text; the table in relay.rules.settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from relay.mail.text import MailView
from relay.rules.automated import AutoreplyRule
from relay.rules.base import Hit, Rule, RuleContext
from relay.rules.content import AttachmentsRule, ContactRule, KeywordsRule, LinksRule
from relay.rules.identity import IdentityPartsRule, OutsideRecipientsRule
from relay.rules.pair_context import NewPairRule, PausedRule, RateRule, WatchRule
from relay.rules.safeguarding import SafeguardingRule
from relay.rules.settings import RULE_ERROR, RulesConfig

log = logging.getLogger(__name__)


def build_rules(config: RulesConfig | None = None) -> list[Rule]:
    """The enabled built-in rules, patterns compiled for this configuration."""
    config = config or RulesConfig()
    every: list[Rule] = [
        AutoreplyRule(),
        ContactRule(config.contact_detect),
        LinksRule(config.allow_domains, config.remote_content),
        AttachmentsRule(config.allow_types),
        KeywordsRule(config.phrases),
        SafeguardingRule(),
        NewPairRule(config.new_pair_messages),
        WatchRule(),
        PausedRule(),
        RateRule(config.rate_per_hour),
        OutsideRecipientsRule(),
        IdentityPartsRule(),
    ]
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
