"""Check-ins: a short question to one participant, and reading their answer.

Owns the check-in rows and their reply addresses. Each check-in to each
participant has a random 63-bit id (never sequential: it is part of an
address) and is sent from ``checkin-<id>-<hmac>@<domain>``, signed like the
bounce addresses. An answer is taken only from an address of the participant
it was sent to; anything else (a forged signature, an unknown id, a
stranger, the partner) is dropped without storing anything, and the SMTP
answer is the same 250 in every case, so the address tells a prober nothing.

The first number 1-5 in the reply (quoted text removed) is the score; the
rest is the comment. A reply with no such number is kept with no score.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.mail.addresses import SignedAddresses
from relay.mail.text import MailView, text_parts
from relay.rules.base import Rule, RuleContext
from relay.rules.engine import run_rules
from relay.store.models import Checkin, Pair, ParticipantAddress

log = logging.getLogger(__name__)

FLAGGING_RULES = frozenset({"keywords", "contact", "links"})
MAX_COMMENT = 4000
_SCORE = re.compile(r"(?<![\d.,])([1-5])(?![\d.,]?\d)")
_QUOTE_INTRO = re.compile(
    r"^\s*(on .{0,200}wrote:|-{2,}\s*original message\s*-{2,}|from:\s.*|_{5,})\s*$",
    re.IGNORECASE,
)


def new_checkin_id() -> int:
    return secrets.randbits(63) or 1


@dataclass(frozen=True)
class Answer:
    score: int | None
    comment: str


def reply_text(message: EmailMessage) -> str:
    """The plain text of a reply (the first text part), with quoted text removed."""
    parts = text_parts(message)
    plain = [part for part in parts if part.content_type == "text/plain"]
    chosen = plain[0] if plain else (parts[0] if parts else None)
    text = "" if chosen is None else chosen.visible.text
    kept = []
    for line in text.splitlines():
        if _QUOTE_INTRO.match(line):
            break  # everything after "On ... wrote:" is the quoted question
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def parse_answer(text: str) -> Answer:
    found = _SCORE.search(text)
    if found is None:
        return Answer(None, text[:MAX_COMMENT])
    comment = (text[: found.start()] + text[found.end() :]).strip(" \t\n.,:;!?/)-")
    return Answer(int(found.group(1)), comment[:MAX_COMMENT])


def flagged_by_rules(rules: list[Rule], comment: str, pair_address: str, domain: str) -> bool:
    """Whether the moderation rules that read words (keywords, contact details) flag it."""
    if not comment:
        return False
    message = EmailMessage()
    message.set_content(comment)
    context = RuleContext(pair_address=pair_address, relay_domain=domain, sender_role="mentee")
    chosen = [rule for rule in rules if rule.name in FLAGGING_RULES]
    return bool(run_rules(chosen, MailView.from_message(message), context))


def record_answer(
    session: Session,
    addresses: SignedAddresses,
    rules: list[Rule],
    recipient: str,
    from_address: str,
    message: EmailMessage,
    now: datetime,
) -> bool:
    """Store an answer to the check-in a reply address names; False if it was dropped."""
    checkin_id = addresses.item_id(recipient)
    checkin = session.get(Checkin, checkin_id) if checkin_id is not None else None
    if checkin is None:
        log.info("dropped mail to a check-in address that is forged or unknown")
        return False
    owner = session.scalar(
        select(ParticipantAddress.participant_id).where(ParticipantAddress.email == from_address)
    )
    if owner is None or owner != checkin.participant_id:
        log.info("dropped a check-in answer from someone it was not sent to")
        return False
    answer = parse_answer(reply_text(message))
    checkin.answered_at = now
    checkin.score = answer.score
    checkin.comment = answer.comment
    token = session.scalar(select(Pair.token).where(Pair.id == checkin.pair_id))
    pair_address = f"{token}@{addresses.domain}"
    checkin.flagged = flagged_by_rules(rules, answer.comment, pair_address, addresses.domain)
    log.info(
        "check-in %s answered",
        checkin.id,
        extra={"fields": {"pair": token, "score": answer.score}},
    )
    return True
