"""Mail to ``offer-<id>-<sig>@``: a mentee's choice or a mentor's yes or no.

Owns the intake branch for offer replies (next to the check-in branch in
relay.programme.inbound). Such mail is never relayed. It is acted on only when it
comes from an address of the person the letter went to, with a From the
authentication mode believes; anything else (a forged signature, an unknown id, a
stranger, an unauthenticated From, an automatic reply) is dropped without a word,
and the SMTP answer is the same in every case, so the address tells a prober
nothing. A reply that cannot be read gets "please answer with a number / yes or
no"; a reply to an offer that has moved on gets a polite word and changes nothing;
a second copy of a reply already acted on (the same Message-ID) is dropped. Those
answers go out at most ANSWERS_PER_DAY times a day per person and kind, so a
client that keeps writing (or an auto-responder without Auto-Submitted) cannot
make the relay write back without end.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice
from relay.errors import RefusedError
from relay.mail.authentication import Authenticator
from relay.mail.reading import single_from_address
from relay.offers import flow, letters
from relay.offers.answers import chosen_ranks, yes_or_no
from relay.offers.flow import Desk, MovedOn
from relay.outbound.rewrite import first_message_id
from relay.programme.checkins import reply_text
from relay.rules.automated import is_automated
from relay.store import counters
from relay.store.db import Store
from relay.store.models import MatchOffer, OfferChoice, Participant, ParticipantAddress
from relay.store.states import ChoiceState, OfferState, utcnow

log = logging.getLogger(__name__)
ANSWERS_PER_DAY = 3  # "please answer with a number" / "moved on", per person and kind
_RE = re.compile(r"^\s*((re|aw|sv)\s*:\s*)+", re.IGNORECASE)  # the answer adds its own "Re: "

MOVED_ON = {
    OfferState.ACCEPTED: "you are already paired through it.",
    OfferState.DECLINED: "it has closed, and a coordinator will be in touch.",
    OfferState.EXPIRED: "its time ran out, and a coordinator will be in touch.",
    OfferState.CANCELLED: "a coordinator has withdrawn it.",
}


class Envelope(Protocol):
    """What intake knows of how the mail arrived (relay.intake.Incoming)."""

    @property
    def envelope_from(self) -> str: ...

    @property
    def helo(self) -> str: ...

    @property
    def peer(self) -> str: ...


def take(
    store: Store,
    desk: Desk,
    authenticator: Authenticator,
    recipients: Sequence[str],
    raw: bytes,
    message: EmailMessage,
    envelope: Envelope,
) -> bool:
    """Act on replies to offer addresses; True when mail was queued."""
    try:
        from_address = single_from_address(message)
    except RefusedError:
        log.info("dropped an offer reply with no single From")
        return False
    verdict = authenticator.check(
        raw, message, from_address, envelope.envelope_from, envelope.helo, envelope.peer
    )
    if verdict is not None and not verdict.authenticated:
        log.info("dropped an offer reply whose From is not authenticated")
        return False
    if is_automated(message, desk.addresses.domain):
        log.info("dropped an automatic reply to an offer")
        return False
    text = reply_text(message)
    reply = _Reply(
        from_address=from_address,
        text=text,
        subject=_RE.sub("", str(message.get("Subject", "")))[:200],
        message_id=first_message_id(str(message.get("Message-ID", "")))
        or "sha256:" + hashlib.sha256(f"{from_address}\n{text}".encode()).hexdigest(),
    )
    queued = False
    for address in recipients:
        item_id = desk.addresses.item_id(address)
        if item_id is None:
            log.info("dropped mail to an offer address that is forged")
            continue
        try:
            with store.session() as session:
                queued = _one(session, desk, item_id, address, reply) or queued
        except MovedOn:
            with store.session() as session:
                queued = _one(session, desk, item_id, address, reply) or queued
    return queued


class _Reply:
    def __init__(self, from_address: str, text: str, subject: str, message_id: str) -> None:
        self.from_address = from_address
        self.text = text
        self.subject = subject
        self.message_id = message_id


def _one(session: Session, desk: Desk, item_id: int, address: str, reply: _Reply) -> bool:
    owner = session.scalar(
        select(ParticipantAddress.participant_id).where(
            ParticipantAddress.email == reply.from_address
        )
    )
    offer = session.get(MatchOffer, item_id)
    if offer is not None:
        if owner != offer.mentee_id:
            log.info("dropped an offer reply from someone it was not sent to")
            return False
        return _mentee(session, desk, offer, owner, address, reply)
    choice = session.get(OfferChoice, item_id)
    if choice is None:
        log.info("dropped mail to an offer address that is unknown")
        return False
    if owner != choice.mentor_id:
        log.info("dropped an invitation reply from someone it was not sent to")
        return False
    return _mentor(session, desk, choice, owner, address, reply)


def _mentee(
    session: Session, desk: Desk, offer: MatchOffer, owner: int, address: str, reply: _Reply
) -> bool:
    person = session.get(Participant, owner)
    assert person is not None
    count = len(
        session.scalars(select(OfferChoice.id).where(OfferChoice.offer_id == offer.id)).all()
    )
    ranks = chosen_ranks(reply.text, range(1, count + 1))
    if offer.state is OfferState.OPEN and offer.chosen_at is None:
        if ranks is None:
            example = "1" if count == 1 else "2"
            expected = f"the number of the mentor you choose (1 to {count})"
            _unclear(session, desk, person, address, reply, expected, example)
            return True
        if flow.choose(session, desk, offer.id, ranks, reply.message_id, utcnow()):
            return True
    session.refresh(offer)
    if offer.answer_message_id == reply.message_id:
        return False  # this very reply, a second time: already acted on
    why = MOVED_ON.get(offer.state, "you have already chosen, and we have asked your mentor.")
    _moved_on(session, desk, person, address, reply, why)
    return True


def _mentor(
    session: Session, desk: Desk, choice: OfferChoice, owner: int, address: str, reply: _Reply
) -> bool:
    person = session.get(Participant, owner)
    assert person is not None
    said = yes_or_no(reply.text)
    if choice.state is ChoiceState.INVITED:
        if said is None:
            _unclear(session, desk, person, address, reply, '"yes" or "no"', "yes")
            return True
        if flow.answer(session, desk, choice.id, said, reply.message_id, utcnow()):
            return True
    session.refresh(choice)
    if choice.answer_message_id == reply.message_id:
        return False
    if choice.state is ChoiceState.LISTED:
        why = "the mentee has not chosen you yet."  # a reply to nothing we asked
    else:
        why = "the mentee has been matched or the offer has closed. Thank you."
    _moved_on(session, desk, person, address, reply, why)
    return True


def _answered_enough(session: Session, notice: Notice, person: Participant) -> bool:
    """A person who keeps writing gets a few answers a day, not one per mail (loops)."""
    since = utcnow() - timedelta(days=1)
    return counters.notices_since(session, notice, person.email, since) >= ANSWERS_PER_DAY


def _unclear(
    session: Session,
    desk: Desk,
    person: Participant,
    address: str,
    reply: _Reply,
    expected: str,
    example: str,
) -> None:
    if _answered_enough(session, Notice.OFFER_UNCLEAR, person):
        return
    letters.unclear(
        session,
        desk.config,
        desk.notices,
        person,
        address,
        reply.subject,
        reply.message_id if reply.message_id.startswith("<") else "",
        expected,
        example,
    )


def _moved_on(
    session: Session, desk: Desk, person: Participant, address: str, reply: _Reply, why: str
) -> None:
    if _answered_enough(session, Notice.OFFER_MOVED_ON, person):
        return
    letters.moved_on(
        session,
        desk.config,
        desk.notices,
        person,
        address,
        reply.subject,
        reply.message_id if reply.message_id.startswith("<") else "",
        why,
    )
