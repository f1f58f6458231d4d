"""Participants and pairs: who takes part, and who writes to whom.

Owns adding participants (and their extra addresses), creating a pair with a
fresh token and queueing both introductions in the same commit, and ending
a pair (its address then refuses mail).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice, Notices
from relay.errors import ConflictError, NotFoundError
from relay.mail.addresses import new_token, normalise, pair_address, token_of
from relay.safeguarding.consent_checks import may_pair
from relay.store.models import Pair, Participant, ParticipantAddress
from relay.store.states import OPEN_PAIR_STATES, PairStatus, Role, utcnow


def valid_address(text: str) -> str:
    address = normalise(text)
    if not address or "@" not in address or "." not in address.rpartition("@")[2]:
        raise ConflictError(f"not an email address: {text!r}")
    return address


def add_participant(
    session: Session, email: str, name: str, role: Role, extra_addresses: tuple[str, ...] = ()
) -> Participant:
    address = valid_address(email)
    extras = [valid_address(extra) for extra in extra_addresses]
    if not name.strip():
        raise ConflictError("a participant needs a display name")
    taken = session.scalar(
        select(ParticipantAddress.email).where(ParticipantAddress.email.in_([address, *extras]))
    )
    if taken:
        raise ConflictError(f"{taken} is already registered")
    participant = Participant(email=address, display_name=name.strip(), role=role)
    participant.addresses = [
        ParticipantAddress(email=each) for each in dict.fromkeys([address, *extras])
    ]
    session.add(participant)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"{address} is already registered") from None
    return participant


def find_participant(session: Session, email: str) -> Participant:
    address = normalise(email)
    participant = session.scalar(
        select(Participant)
        .join(ParticipantAddress, ParticipantAddress.participant_id == Participant.id)
        .where(ParticipantAddress.email == address)
    )
    if participant is None:
        raise NotFoundError(f"no participant with the address {email!r}")
    return participant


def list_participants(session: Session) -> list[Participant]:
    return list(session.scalars(select(Participant).order_by(Participant.id)))


@dataclass(frozen=True)
class NewPair:
    pair: Pair
    address: str


def create_pair(
    session: Session, notices: Notices, domain: str, mentor_email: str, mentee_email: str
) -> NewPair:
    mentor = find_participant(session, mentor_email)
    mentee = find_participant(session, mentee_email)
    if mentor.role is not Role.MENTOR:
        raise ConflictError(f"{mentor.email} is registered as a {mentor.role}, not a mentor")
    if mentee.role is not Role.MENTEE:
        raise ConflictError(f"{mentee.email} is registered as a {mentee.role}, not a mentee")
    may_pair(mentor, mentee, notices.config.safeguarding.require_check)
    existing = session.scalar(
        select(Pair).where(
            Pair.mentor_id == mentor.id,
            Pair.mentee_id == mentee.id,
            Pair.status.in_(OPEN_PAIR_STATES),
        )
    )
    if existing is not None:
        raise ConflictError(
            f"{mentor.email} and {mentee.email} are already paired at "
            f"{pair_address(existing.token, domain)}"
        )
    pair = Pair(token=_unused_token(session), mentor=mentor, mentee=mentee)
    session.add(pair)
    session.flush()
    address = pair_address(pair.token, domain)
    for recipient, partner in ((mentor, mentee), (mentee, mentor)):
        notices.queue(
            session,
            Notice.INTRO,
            recipient,
            partner_name=partner.display_name,
            partner_role=partner.role.value,
            pair_address=address,
            reply_to=address,  # "just reply" to the introduction reaches the partner
        )
    return NewPair(pair=pair, address=address)


def _unused_token(session: Session) -> str:
    while True:  # a collision at 64 bits is a curiosity, but cheap to rule out
        token = new_token()
        if session.scalar(select(Pair.id).where(Pair.token == token)) is None:
            return token


def find_pair(session: Session, address: str, domain: str) -> Pair:
    token = token_of(address, domain)
    if token is None and "@" not in address:
        token = token_of(f"{address}@{domain}", domain)
    pair = session.scalar(select(Pair).where(Pair.token == token)) if token else None
    if pair is None:
        raise NotFoundError(f"no pair with the address {address!r}")
    return pair


def list_pairs(session: Session, include_ended: bool = True) -> list[Pair]:
    query = select(Pair).order_by(Pair.id)
    if not include_ended:
        query = query.where(Pair.status == PairStatus.ACTIVE)
    return list(session.scalars(query))


def pause_pair(session: Session, address: str, domain: str) -> Pair:
    """Hold everything either side writes until the pair is resumed."""
    pair = find_pair(session, address, domain)
    if pair.status is not PairStatus.ACTIVE:
        raise ConflictError(f"{pair_address(pair.token, domain)} is {pair.status}, not active")
    pair.status = PairStatus.PAUSED
    return pair


def resume_pair(session: Session, address: str, domain: str) -> Pair:
    """Let a paused pair's new mail flow again; what was held while paused stays held."""
    pair = find_pair(session, address, domain)
    if pair.status is not PairStatus.PAUSED:
        raise ConflictError(f"{pair_address(pair.token, domain)} is {pair.status}, not paused")
    pair.status = PairStatus.ACTIVE
    pair.pause_reason = None  # a person resumed it, whatever paused it
    return pair


def end_pair(session: Session, address: str, domain: str) -> Pair:
    pair = find_pair(session, address, domain)
    if pair.status is PairStatus.ENDED:
        raise ConflictError(f"{pair_address(pair.token, domain)} has already ended")
    pair.status = PairStatus.ENDED
    pair.ended_at = utcnow()
    return pair
