"""One decision and one answer for a message, whoever its From names.

Owns the part of deciding that must not depend on whether a guessed address
belongs to a participant (no address oracle): a From that names a
participant but is not authenticated, and a From that names no participant
of the pair (set aside), get the same action, the ``authentication`` row of
the action table (hold by default), whatever else the rules found, and the
same reply. Otherwise the strictest action any pair calls for wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from relay.mail import replies
from relay.mail.replies import Reply
from relay.rules.base import Action, Hit, decide

_REPLY = {
    Action.ACCEPT: replies.OK,
    Action.HOLD: replies.OK,
    Action.REJECT: replies.REJECTED,
    Action.DISCARD: replies.DISCARDED,
    Action.ESCALATE: replies.OK,
}


@dataclass(frozen=True)
class PairFindings:
    """What was found for one pair the message is for."""

    hits: Sequence[Hit]
    unverified: bool  # the From names a participant but is not authenticated


def decide_message(
    findings: Iterable[PairFindings], set_aside: bool, actions: Mapping[str, Action]
) -> Action:
    unverified = actions.get("authentication", Action.HOLD)
    chosen = [
        unverified
        if each.unverified and unverified is not Action.ACCEPT
        else decide(each.hits, actions)
        for each in findings
    ]
    if set_aside:
        chosen.append(max(unverified, Action.HOLD))
    return max(chosen)


def reply_for(action: Action, findings: Sequence[PairFindings], set_aside: bool) -> Reply:
    if set_aside or any(each.unverified for each in findings):
        return replies.UNVERIFIED if action is Action.REJECT else _REPLY[action]
    hits = [hit for each in findings for hit in each.hits]
    if action is Action.REJECT and any(hit.rule == "outside_recipients" for hit in hits):
        return replies.OUTSIDE_RECIPIENT
    return _REPLY[action]
