"""The shipped safeguarding phrase list: each family catches its messages, ordinary talk passes.

The figures (benign messages escalated, risky messages caught) are printed
with `pytest -s tests/safeguarding/test_phrases.py`; docs/safeguarding.md
records them.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from relay.mail.text import MailView
from relay.rules.base import Action, RuleContext, decide
from relay.rules.engine import build_rules, run_rules
from relay.rules.safeguarding import SafeguardingRule, read_families, shipped_families
from relay.rules.settings import RulesConfig
from tests.safeguarding.corpus import BENIGN, RISKY

CONTEXT = RuleContext(pair_address="p@relay.test", relay_domain="relay.test", sender_role="mentor")


def view(body: str, subject: str = "Hi") -> MailView:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = subject
    message.set_content(body)
    return MailView.from_message(message)


def families_hit(body: str) -> set[str]:
    hits = SafeguardingRule().check(view(body), CONTEXT)
    return {hit.reason.split(":")[0] for hit in hits}


def test_every_family_of_the_shipped_list_is_covered_by_the_risky_set():
    assert set(shipped_families()) == set(RISKY)


@pytest.mark.parametrize(
    "family, body", [(family, body) for family, bodies in RISKY.items() for body in bodies]
)
def test_each_risky_message_is_caught_in_its_family(family: str, body: str):
    assert family in families_hit(body)


@pytest.mark.parametrize("body", BENIGN)
def test_ordinary_mentoring_talk_does_not_escalate(body: str):
    assert families_hit(body) == set()


def test_figures_and_the_default_action():
    rules = build_rules(RulesConfig(disabled=frozenset({"links", "contact"})))
    actions = RulesConfig().actions
    assert actions["safeguarding"] is Action.ESCALATE
    benign_escalated = sum(
        decide(run_rules(rules, view(b), CONTEXT), actions) is Action.ESCALATE for b in BENIGN
    )
    risky = [b for bodies in RISKY.values() for b in bodies]
    risky_escalated = sum(
        decide(run_rules(rules, view(b), CONTEXT), actions) is Action.ESCALATE for b in risky
    )
    print(
        f"\nsafeguarding phrases: benign {benign_escalated}/{len(BENIGN)} escalated, "
        f"risky {risky_escalated}/{len(risky)} escalated"
    )
    assert (benign_escalated, risky_escalated) == (0, len(risky))


def test_the_subject_counts_too_and_the_span_points_at_what_was_written():
    hits = SafeguardingRule().check(view("see you soon", subject="Our little SECRET"), CONTEXT)
    assert [(h.rule, h.reason) for h in hits] == [("safeguarding", "secrecy: our little secret")]
    assert hits[0].spans[0].text == "Our little SECRET"


def test_a_phrase_before_any_family_heading_is_an_error():
    with pytest.raises(ValueError, match="before any"):
        read_families("loose phrase\n[family]\nx")
