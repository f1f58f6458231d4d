"""Context rules, the action table, configuration and hit storage."""

from __future__ import annotations

import dataclasses
import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from rulemail import CONTEXT, check, parse, plain

from relay.errors import ConfigError
from relay.mail.text import MailView
from relay.rules.automated import is_automated
from relay.rules.base import Action, Hit, RuleContext, Span, decide
from relay.rules.engine import build_rules, run_rules
from relay.rules.settings import DEFAULT_ACTIONS, RulesConfig, RulesConfigError


def _run(msg: EmailMessage, **context: object) -> list[Hit]:
    ctx = dataclasses.replace(CONTEXT, **context)  # type: ignore[arg-type]
    return run_rules(build_rules(), MailView.from_message(msg), ctx)


# --- context rules -----------------------------------------------------------------


def test_new_pair_holds_the_first_two_messages_from_each_side() -> None:
    msg = plain("Hello!")
    for earlier in (0, 1):
        hits = _run(msg, messages_from_sender_in_pair=earlier)
        assert [h.rule for h in hits] == ["new_pair"]
        assert hits[0].reason == f"message {earlier + 1} of the first 2 from the mentee"
    assert _run(msg, messages_from_sender_in_pair=2) == []


def test_watch_and_rate() -> None:
    msg = plain("Hello!")
    assert [h.rule for h in _run(msg, watched=True)] == ["watch"]
    assert _run(msg, sender_messages_last_hour=19) == []
    # The count stops at the limit: 20 means "20 or more before this one".
    hits = _run(msg, sender_messages_last_hour=20)
    assert [(h.rule, h.reason) for h in hits] == [
        ("rate", "more than 20 messages in the last hour (limit 20)")
    ]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated; owner-email=x@example.org"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
        ("Precedence", "list"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Out of office"),
        ("X-Loop", "relay.example.org"),
    ],
)
def test_automated_mail_is_discarded(header: str, value: str) -> None:
    msg = plain("I am out of the office until Monday.")
    msg[header] = value
    hits = _run(msg)
    assert [h.rule for h in hits] == ["autoreply"]
    assert decide(hits, DEFAULT_ACTIONS) is Action.DISCARD
    assert is_automated(msg, "relay.example.org")


def test_person_written_mail_is_not_automated() -> None:
    msg = plain("Thanks!")
    msg["Auto-Submitted"] = "no"
    msg["X-Loop"] = "some-other-list.example.com"
    assert not is_automated(msg, "relay.example.org")
    assert _run(msg) == []


# --- decide ----------------------------------------------------------------------------


def test_actions_are_ordered() -> None:
    assert Action.ACCEPT < Action.HOLD < Action.REJECT < Action.DISCARD
    assert str(Action.REJECT) == "reject"
    assert Action.parse(" Hold ") is Action.HOLD


def test_strongest_action_wins_and_unknown_rules_hold() -> None:
    actions = {"contact": Action.HOLD, "links": Action.REJECT, "watch": Action.ACCEPT}
    assert decide([], actions) is Action.ACCEPT
    assert decide([Hit("watch", "watched")], actions) is Action.ACCEPT
    assert decide([Hit("contact", "x"), Hit("links", "y")], actions) is Action.REJECT
    assert decide([Hit("custom", "z")], actions) is Action.HOLD


def test_a_failing_rule_holds_instead_of_crashing() -> None:
    class Broken:
        name = "broken"

        def check(self, mail: MailView, context: RuleContext) -> list[Hit]:
            raise RuntimeError("boom")

    hits = run_rules([Broken()], MailView.from_message(plain("hi")), CONTEXT)
    assert hits == [Hit("rule_error", "rule broken failed: RuntimeError")]
    assert decide(hits, DEFAULT_ACTIONS) is Action.HOLD


# --- configuration ------------------------------------------------------------------------


def test_defaults() -> None:
    config = RulesConfig.from_mapping({}, "relay.toml")
    assert config == RulesConfig()
    assert config.new_pair_messages == 2 and config.rate_per_hour == 20
    assert dict(config.actions)["autoreply"] is Action.DISCARD
    assert {r.name for r in build_rules(config)} == {
        "autoreply", "contact", "links", "attachments", "keywords", "new_pair", "watch", "paused", "rate",
        "outside_recipients", "identity_parts", "safeguarding",
    }  # fmt: skip


def test_full_table_is_read() -> None:
    config = RulesConfig.from_mapping(
        {
            "disable": ["rate"],
            "actions": {"contact": "reject", "links": "accept"},
            "links": {"allow_domains": ["*.Wikipedia.org"]},
            "new_pair": {"messages": 0},
            "rate": {"per_hour": 5},
        },
        "relay.toml",
    )
    assert config.actions["contact"] is Action.REJECT
    assert config.actions["links"] is Action.ACCEPT
    assert config.actions["keywords"] is Action.HOLD
    assert config.allow_domains == ("wikipedia.org",)
    assert "rate" not in {r.name for r in build_rules(config)}
    assert (
        check(plain("hi"), config, dataclasses.replace(CONTEXT, messages_from_sender_in_pair=0))
        == []
    )


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        ({"colour": "red"}, "rules.colour: unknown key"),
        ({"links": {"allow": ["x.org"]}}, "rules.links.allow: unknown key"),
        ({"links": {"allow_domains": "x.org"}}, "rules.links.allow_domains: expected a list"),
        ({"actions": {"contact": "block"}}, "rules.actions.contact: unknown action 'block'"),
        ({"actions": {"contact": 1}}, "rules.actions.contact: expected accept"),
        ({"actions": {"spam": "hold"}}, "rules.actions.spam: unknown key"),
        ({"disable": ["spam"]}, "rules.disable: unknown rule 'spam'"),
        ({"rate": {"per_hour": "20"}}, "rules.rate.per_hour: expected a whole number"),
        ({"rate": {"per_hour": True}}, "rules.rate.per_hour: expected a whole number"),
        ({"new_pair": {"messages": -1}}, "rules.new_pair.messages: expected a whole number"),
        ({"attachments": {"allow_types": ["pdf"]}}, "rules.attachments.allow_types: 'pdf'"),
        ({"contact": {"detect": ["fax"]}}, "rules.contact.detect: unknown kind 'fax'"),
        ({"keywords": {"files": ["missing.txt"]}}, "rules.keywords.files: cannot read"),
        ({"watch": []}, "rules.watch: expected a table"),
    ],
)
def test_config_errors_name_source_and_key(
    mapping: dict[str, object], named: str, tmp_path: Path
) -> None:
    with pytest.raises(RulesConfigError) as caught:
        RulesConfig.from_mapping(mapping, "/etc/relay.toml", tmp_path)
    assert str(caught.value).startswith("/etc/relay.toml: ")
    assert named in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ConfigError)


# --- storage --------------------------------------------------------------------------------


def test_hits_round_trip_through_json() -> None:
    msg = parse(plain("call 07700 900123", subject="add me on snapchat").as_bytes())
    hits = check(msg)
    assert hits
    stored = json.dumps([hit.to_json() for hit in hits])
    assert [Hit.from_json(data) for data in json.loads(stored)] == hits
    span = Span(3, 10, 22, "07700 900123", "body")
    assert Span.from_json({"part": 3, "start": 10, "end": 22, "text": "07700 900123"}) == span


@pytest.mark.parametrize(
    "bad",
    [{"rule": "x"}, {"rule": "x", "reason": "y", "spans": [{"part": "1"}]},
     {"rule": "x", "reason": "y", "spans": [{"part": 1, "start": 0, "end": 1, "text": "a",
                                            "where": "nowhere"}]}],
)  # fmt: skip
def test_malformed_stored_hits_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Hit.from_json(bad)
