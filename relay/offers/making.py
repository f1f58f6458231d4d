"""`relay match offer`: storing a round of offers and sending the mentees their letters.

Owns turning matching.offers' OfferRound into rows: participants registered (as
`relay match apply` does), one offer per mentee with its choices, and the letter
from the offer's signed address, all in one commit. The places a round may use
are the mentors' capacity minus their open pairs and the places open offers hold
(relay.offers.places); a mentee with an open offer sits the round out.

The round was computed from what the database said before; another round may
have written since. So the store re-reads pairs, holds and open offers under the
places lock (relay.offers.places.lock_places) and keeps an offer only if its
mentee is still waiting and its reserved mentor still has a free place; the
others are returned as unplaced, with the reason, for the coordinator.

Rows go in with Core inserts (a round can be 30,000 offers): participants are
looked up once for the whole round, not one query per person.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice
from relay.mail import checks
from relay.offers import letters
from relay.offers.flow import Desk
from relay.offers.places import held_places, lock_places
from relay.ops.wakeup import QUEUED_MAIL
from relay.store import match_round, registry
from relay.store.base import Base
from relay.store.match_round import Person
from relay.store.models import MatchOffer, OfferChoice, OutboxEntry, Participant
from relay.store.models import ParticipantAddress as Address
from relay.store.notify import DIRECTORY_CHANGED
from relay.store.states import ChoiceState, OfferState, Role

if TYPE_CHECKING:
    from matching.offers import Offer
    from matching.profiles import Profile

#: Rows per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 5000
RACED = "another round running at the same time"


@dataclass(frozen=True)
class Unplaced:
    """A mentee the round computed an offer for but could not store one for, and why."""

    email: str
    reason: str


@dataclass(frozen=True)
class StoredRound:
    made: list[tuple[int, Offer]]  # (offer id, the offer), in the round's order
    unplaced: list[Unplaced]


def new_offer_id() -> int:
    return secrets.randbits(63) or 1


def mentees_with_open_offers(session: Session) -> set[int]:
    return set(
        session.scalars(select(MatchOffer.mentee_id).where(MatchOffer.state == OfferState.OPEN))
    )


def shown(profile: Profile, reasons: Iterable[str] = ()) -> dict[str, Any]:
    """What a letter may show of a person: never an address or an organisation."""
    return {
        "name": profile.name,
        "field": profile.field,
        "interests": list(profile.interests),
        "goals": list(profile.goals),
        "languages": list(profile.languages),
        "reasons": list(reasons),
    }


@dataclass(frozen=True)
class Letter:
    """An offer's id and its mentee's letter, built before the writing transaction."""

    offer_id: int
    outbox: dict[str, Any]  # outbox column values


def write_letters(
    desk: Desk, state: match_round.RoundState, offers: Iterable[Offer], now: datetime
) -> dict[str, Letter]:
    """Each offer's letter, by the mentee's profile email.

    Building the letters is most of a round's cost (about 1 ms each), so it is done
    before store_offers: the write lock (SQLite's one writer, which the daemon's
    intake also waits for, and the places lock) is then held only for the inserts.
    """
    domain = desk.config.relay.domain
    expires = letters.when(now + desk.config.offer_expires)
    made = {}
    for offer in offers:
        known = state.people.get(offer.mentee.email)
        to = (
            letters.Recipient(known.name, known.email)
            if known is not None
            else letters.Recipient(
                checks.display_name(offer.mentee.name),
                registry.valid_address(offer.mentee.email, domain),
            )
        )
        offer_id = new_offer_id()
        candidates = [
            shown(candidate.mentor, candidate.reasons) | {"rank": rank}
            for rank, candidate in enumerate(offer.candidates, start=1)
        ]
        made[offer.mentee.email] = Letter(
            offer_id,
            letters.outbox_row(
                desk.config,
                desk.notices,
                Notice.OFFER,
                to,
                desk.addresses.address(offer_id),
                candidates=candidates,
                expires=expires,
                policy=letters.BATCH_POLICY,
            ),
        )
    return made


def store_offers(
    session: Session,
    desk: Desk,
    offers: Iterable[Offer],
    letter_of: Mapping[str, Letter],
    capacity_of: Mapping[str, int],
    cohort_id: int | None,
    now: datetime,
) -> StoredRound:
    """The offers that still fit, with their choices and letters; in the caller's commit.

    letter_of: write_letters' result for these offers, with the same `now`.
    capacity_of: a mentor's email -> their whole capacity (mentors.csv), which the
    offer keeps to check for room when the mentor is invited.
    """
    lock_places(session)
    domain = desk.config.relay.domain
    state = match_round.round_state(session, domain)
    kept, unplaced = _still_fitting(session, state, list(offers), capacity_of)
    people = _register(session, state, kept, domain)
    offer_rows: list[dict[str, Any]] = []
    choice_rows: list[dict[str, Any]] = []
    letter_rows: list[dict[str, Any]] = []
    made = []
    for offer in kept:
        letter = letter_of[offer.mentee.email]
        offer_rows.append(
            {
                "id": letter.offer_id,
                "mentee_id": people[offer.mentee.email].participant_id,
                "cohort_id": cohort_id,
                "state": OfferState.OPEN,
                "profile": json.dumps(shown(offer.mentee)),
                "sent_at": now,
                "expires_at": now + desk.config.offer_expires,
                "remind_at": now + desk.config.offer_expires / 2,
                "chosen_order": "",
                "reason": "",
            }
        )
        choice_rows.extend(
            {
                "id": new_offer_id(),
                "offer_id": letter.offer_id,
                "rank": rank,
                "mentor_id": people[candidate.mentor.email].participant_id,
                "mentor_capacity": capacity_of[candidate.mentor.email],
                "reserved": candidate.reserved,
                "score": candidate.score,
                "profile": json.dumps(shown(candidate.mentor, candidate.reasons)),
                "state": ChoiceState.LISTED,
            }
            for rank, candidate in enumerate(offer.candidates, start=1)
        )
        letter_rows.append(letter.outbox)
        made.append((letter.offer_id, offer))
    for table, rows in ((MatchOffer, offer_rows), (OfferChoice, choice_rows)):
        if rows:
            _insert(session, table, rows)
    if letter_rows:
        _insert(session, OutboxEntry, letter_rows)
        session.info[QUEUED_MAIL] = True  # Core inserts pass the ORM's flush hooks by (NOTIFY)
    return StoredRound(made, unplaced)


def _insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    # On the table, not the ORM class: the ORM's bulk INSERT walks every row in
    # Python first, which cost more than the database (8 of 14 s at 30,000 offers).
    session.connection().execute(insert(model.__table__), rows)  # type: ignore[arg-type]


def _still_fitting(
    session: Session,
    state: match_round.RoundState,
    offers: list[Offer],
    capacity_of: Mapping[str, int],
) -> tuple[list[Offer], list[Unplaced]]:
    """The offers whose mentee still waits and whose reserved mentor still has room."""
    load: Counter[int | str] = Counter(state.load)
    load.update(held_places(session))
    offered = mentees_with_open_offers(session)
    kept, unplaced = [], []
    for offer in offers:
        mentee = state.people.get(offer.mentee.email)
        reserved = next(c.mentor for c in offer.candidates if c.reserved)
        mentor = state.people.get(reserved.email)
        place: int | str = mentor.participant_id if mentor else reserved.email
        why = ""
        if mentee is not None and mentee.role is not Role.MENTEE:
            why = f"registered as a {mentee.role} by {RACED}"
        elif mentee is not None and mentee.participant_id in state.open_by_mentee:
            why = f"paired by {RACED}"
        elif mentee is not None and mentee.participant_id in offered:
            why = f"offered mentors by {RACED}"
        elif mentor is not None and mentor.role is not Role.MENTOR:
            why = f"{reserved.name} was registered as a {mentor.role} by {RACED}"
        elif load[place] >= capacity_of[reserved.email]:
            why = f"the place kept for them was taken by {RACED}; run the round again"
        if why:
            unplaced.append(Unplaced(offer.mentee.email, why))
            continue
        load[place] += 1
        kept.append(offer)
    return kept, unplaced


def _register(
    session: Session, state: match_round.RoundState, offers: list[Offer], domain: str
) -> dict[str, Person]:
    """Everyone the offers name, by their profile's email; the new ones registered in bulk."""
    people: dict[str, Person] = {}
    new: dict[str, Person] = {}
    for offer in offers:
        named = [(offer.mentee, Role.MENTEE), *((c.mentor, Role.MENTOR) for c in offer.candidates)]
        for profile, role in named:
            if profile.email in people:
                continue
            known = state.people.get(profile.email)
            if known is None:
                address = registry.valid_address(profile.email, domain)
                known = new.get(address) or Person(
                    0, address, checks.display_name(profile.name), role
                )
                new[address] = known
            people[profile.email] = known
    if not new:
        return people
    _insert(
        session,
        Participant,
        [{"email": p.email, "display_name": p.name, "role": p.role} for p in new.values()],
    )
    addresses = list(new)
    ids: dict[str, int] = {}
    for start in range(0, len(addresses), CHUNK):
        chunk = addresses[start : start + CHUNK]
        query = select(Participant.email, Participant.id).where(Participant.email.in_(chunk))
        ids.update((email, pid) for email, pid in session.execute(query))
    _insert(session, Address, [{"participant_id": ids[a], "email": a} for a in addresses])
    session.info[DIRECTORY_CHANGED] = True  # as note_changes would for ORM rows
    return {
        email: p._replace(participant_id=ids.get(p.email, p.participant_id))
        for email, p in people.items()
    }
