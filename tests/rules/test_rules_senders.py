"""relay.rules.senders: a right and a wrong guess of a participant's From decide alike."""

from __future__ import annotations

import pytest

from relay.mail import replies
from relay.rules.base import Action, Hit
from relay.rules.senders import PairFindings, decide_message, reply_for
from relay.rules.settings import DEFAULT_ACTIONS

OUTSIDE = Hit("outside_recipients", "To/Cc names someone outside the pair (x@y)")
AUTH = Hit("authentication", "From y is not authenticated")


@pytest.mark.parametrize("table_action", [Action.HOLD, Action.REJECT, Action.DISCARD])
def test_unverified_participant_and_stranger_get_one_answer(table_action: Action):
    actions = dict(DEFAULT_ACTIONS) | {"authentication": table_action}
    # Whatever else the rules found (an outside Cc would be a reject), the table decides.
    right_guess = [PairFindings([OUTSIDE, AUTH], unverified=True)]
    wrong_guess: list[PairFindings] = []
    right = decide_message(right_guess, False, actions)
    wrong = decide_message(wrong_guess, True, actions)
    assert right == wrong == table_action
    assert reply_for(right, right_guess, False) == reply_for(wrong, wrong_guess, True)


def test_verified_mail_keeps_the_strictest_action_and_its_reply():
    findings = [PairFindings([OUTSIDE], unverified=False)]
    action = decide_message(findings, False, DEFAULT_ACTIONS)
    assert action is Action.REJECT
    assert reply_for(action, findings, False) == replies.OUTSIDE_RECIPIENT
    assert reply_for(Action.REJECT, [PairFindings([AUTH], True)], False) == replies.UNVERIFIED
