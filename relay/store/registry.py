"""Participants and pairs: who takes part, and who writes to whom.

Owns adding participants (and their extra addresses) after checking their
names and addresses at the door (relay.mail.checks), changing them later
(name, role, time zone, addresses), removing someone who is in no pair,
creating a pair with a fresh token and queueing both introductions in the
same commit, and pausing, resuming and ending a pair.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice, Notices
from relay.errors import ConflictError, InvalidInputError, NotFoundError
from relay.mail import checks
from relay.mail.addresses import new_token, normalise, pair_address, token_of
from relay.safeguarding.consent_checks import may_pair
from relay.store.models import MatchOffer, OfferChoice, Pair, Participant, ParticipantAddress
from relay.store.states import OPEN_PAIR_STATES, OfferState, PairStatus, Role, utcnow


def valid_address(text: str, relay_domain: str | None = None) -> str:
    return checks.participant_address(text, relay_domain)


def valid_time_zone(text: str) -> str:
    """An IANA zone name such as Europe/London; '' clears it."""
    zone = text.strip()
    if not zone:
        return ""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"unknown time zone {zone!r} (expected an IANA name such as Europe/London)"
        ) from None
    return zone


def add_participant(
    session: Session,
    email: str,
    name: str,
    role: Role,
    extra_addresses: tuple[str, ...] = (),
    *,
    relay_domain: str | None = None,
    time_zone: str = "",
) -> Participant:
    address = valid_address(email, relay_domain)
    extras = [valid_address(extra, relay_domain) for extra in extra_addresses]
    display_name = checks.display_name(name)
    _refuse_taken(session, [address, *extras])
    participant = Participant(
        email=address, display_name=display_name, role=role, time_zone=valid_time_zone(time_zone)
    )
    participant.addresses = [
        ParticipantAddress(email=each) for each in dict.fromkeys([address, *extras])
    ]
    session.add(participant)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"{address} is already registered") from None
    return participant


def _refuse_taken(session: Session, addresses: Iterable[str]) -> None:
    wanted = list(addresses)
    taken = session.scalar(
        select(ParticipantAddress.email).where(ParticipantAddress.email.in_(wanted))
    )
    if taken:
        raise ConflictError(f"{taken} is already registered")


def edit_participant(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    role: Role | None = None,
    time_zone: str | None = None,
) -> Participant:
    """Change what is given; a role can change only while the person is in no open pair."""
    participant = find_participant(session, email)
    if name is not None:
        participant.display_name = checks.display_name(name)
    if role is not None and role is not participant.role:
        open_pairs = pairs_of(session, participant, open_only=True)
        if open_pairs:
            raise ConflictError(
                f"{participant.email} is the {participant.role} of "
                f"{_count(len(open_pairs), 'open pair')}; a role changes only outside a pair"
            )
        participant.role = role
    if time_zone is not None:
        participant.time_zone = valid_time_zone(time_zone)
    return participant


def add_address(
    session: Session, email: str, address: str, relay_domain: str | None = None
) -> Participant:
    participant = find_participant(session, email)
    extra = valid_address(address, relay_domain)
    _refuse_taken(session, [extra])
    participant.addresses.append(ParticipantAddress(email=extra))
    session.flush()
    return participant


def remove_address(session: Session, email: str, address: str) -> Participant:
    participant = find_participant(session, email)
    bare = normalise(address)
    if bare == participant.email:
        raise ConflictError(
            f"{bare} is {participant.display_name}'s main address (mail to them goes there); "
            "it cannot be removed"
        )
    for each in participant.addresses:
        if each.email == bare:
            participant.addresses.remove(each)
            return participant
    raise NotFoundError(f"{bare or address!r} is not an address of {participant.email}")


def remove_participant(session: Session, email: str, domain: str) -> Participant:
    """Delete someone who is in no pair at all; anyone with a pair (even ended) stays."""
    participant = find_participant(session, email)
    pairs = pairs_of(session, participant)
    if pairs:
        open_pairs = [p for p in pairs if p.status in OPEN_PAIR_STATES]
        if open_pairs:
            listed = ", ".join(pair_address(p.token, domain) for p in open_pairs)
            raise ConflictError(
                f"{participant.email} is in {_count(len(open_pairs), 'open pair')} ({listed}); "
                "end it first"
            )
        raise ConflictError(
            f"{participant.email} is in {_count(len(pairs), 'ended pair')}, whose transcript "
            "names them; only someone who was never paired can be removed"
        )
    _forget_offers(session, participant)
    session.delete(participant)
    return participant


def _forget_offers(session: Session, participant: Participant) -> None:
    """Closed match offers naming someone go with them; an open one must be cancelled first."""
    pid = participant.id
    offered = select(OfferChoice.offer_id).where(OfferChoice.mentor_id == pid)
    live = session.scalar(
        select(MatchOffer.id).where(
            MatchOffer.state == OfferState.OPEN,
            or_(MatchOffer.mentee_id == pid, MatchOffer.id.in_(offered)),
        )
    )
    if live is not None:
        raise ConflictError(
            f"{participant.email} is named in open offer {live}; `relay offers cancel {live}` first"
        )
    theirs = select(MatchOffer.id).where(MatchOffer.mentee_id == pid)
    session.execute(
        delete(OfferChoice).where(
            or_(OfferChoice.offer_id.in_(theirs), OfferChoice.mentor_id == pid)
        )
    )
    session.execute(delete(MatchOffer).where(MatchOffer.mentee_id == pid))


def pairs_of(session: Session, participant: Participant, open_only: bool = False) -> list[Pair]:
    query = select(Pair).where(
        (Pair.mentor_id == participant.id) | (Pair.mentee_id == participant.id)
    )
    if open_only:
        query = query.where(Pair.status.in_(OPEN_PAIR_STATES))
    return list(session.scalars(query.order_by(Pair.id)))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def find_participant(session: Session, email: str) -> Participant:
    address = normalise(email)
    participant = (
        None
        if not address
        else session.scalar(
            select(Participant)
            .join(ParticipantAddress, ParticipantAddress.participant_id == Participant.id)
            .where(ParticipantAddress.email == address)
        )
    )
    if participant is None:
        raise NotFoundError(f"no participant with the address {email!r}")
    return participant


def participant_in_pair(pair: Pair, address: str) -> Participant | None:
    """The participant of the pair who has this address registered, if either has."""
    for participant in (pair.mentor, pair.mentee):
        if any(each.email == address for each in participant.addresses):
            return participant
    return None


def list_participants(session: Session) -> list[Participant]:
    return list(session.scalars(select(Participant).order_by(Participant.id)))


def pair_counts(session: Session) -> dict[int, int]:
    """How many pairs (of any state) each participant id is in."""
    counts: dict[int, int] = {}
    for column in (Pair.mentor_id, Pair.mentee_id):
        for participant_id, number in session.execute(
            select(column, func.count(Pair.id)).group_by(column)
        ):
            counts[participant_id] = counts.get(participant_id, 0) + int(number)
    return counts


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
    for person in (mentor, mentee):  # stored before names were checked at the door
        try:
            checks.display_name(person.display_name)
        except InvalidInputError as error:
            raise InvalidInputError(
                f"{person.email}: {error}; correct it with `relay participant edit "
                f"{person.email} --name NAME`"
            ) from None
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
