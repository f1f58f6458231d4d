"""`relay match offer`: storing a round of offers and sending the mentees their letters.

Owns turning matching.offers' OfferRound into rows: participants registered (as
`relay match apply` does), one offer per mentee with its choices, and the letter
from the offer's signed address, all in one commit. The places a round may use
are the mentors' capacity minus their open pairs and the places open offers hold
(relay.offers.flow.holding); a mentee with an open offer sits the round out.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice
from relay.errors import NotFoundError
from relay.offers import letters
from relay.offers.flow import Desk, holding
from relay.store import registry
from relay.store.models import MatchOffer, OfferChoice, Participant
from relay.store.states import ChoiceState, OfferState, Role

if TYPE_CHECKING:
    from matching.offers import Offer
    from matching.profiles import Profile


def new_offer_id() -> int:
    return secrets.randbits(63) or 1


def held_places(session: Session) -> Counter[int]:
    """Places open offers hold, per mentor id."""
    rows = session.execute(
        select(OfferChoice.mentor_id, func.count(func.distinct(OfferChoice.offer_id)))
        .join(MatchOffer, MatchOffer.id == OfferChoice.offer_id)
        .where(holding())
        .group_by(OfferChoice.mentor_id)
    )
    return Counter({mentor_id: count for mentor_id, count in rows})


def mentees_with_open_offers(session: Session) -> set[int]:
    return set(
        session.scalars(select(MatchOffer.mentee_id).where(MatchOffer.state == OfferState.OPEN))
    )


def profile_json(profile: Profile, reasons: Iterable[str] = ()) -> str:
    """What a letter may show of a person: never an address or an organisation."""
    return json.dumps(
        {
            "name": profile.name,
            "field": profile.field,
            "interests": list(profile.interests),
            "goals": list(profile.goals),
            "languages": list(profile.languages),
            "reasons": list(reasons),
        }
    )


def _participant(session: Session, profile: Profile, role: Role, domain: str) -> Participant:
    try:
        return registry.find_participant(session, profile.email)
    except NotFoundError:
        registry.add_participant(session, profile.email, profile.name, role, relay_domain=domain)
        return registry.find_participant(session, profile.email)


def store_offers(
    session: Session,
    desk: Desk,
    offers: Iterable[Offer],
    capacity_of: Mapping[str, int],
    cohort_id: int | None,
    now: datetime,
) -> list[MatchOffer]:
    """One offer per mentee with its choices, and the mentee's letter; in the caller's commit.

    capacity_of: a mentor's email -> their whole capacity (mentors.csv), which the
    offer keeps to check for room when the mentor is invited.
    """
    domain = desk.config.relay.domain
    made = []
    for offer in offers:
        mentee = _participant(session, offer.mentee, Role.MENTEE, domain)
        row = MatchOffer(
            id=new_offer_id(),
            mentee_id=mentee.id,
            cohort_id=cohort_id,
            state=OfferState.OPEN,
            profile=profile_json(offer.mentee),
            sent_at=now,
            expires_at=now + desk.config.offer_expires,
            chosen_order="",
            reason="",
        )
        session.add(row)
        shown = []
        for rank, candidate in enumerate(offer.candidates, start=1):
            mentor = _participant(session, candidate.mentor, Role.MENTOR, domain)
            stored_profile = profile_json(candidate.mentor, candidate.reasons)
            session.add(
                OfferChoice(
                    id=new_offer_id(),
                    offer_id=row.id,
                    rank=rank,
                    mentor_id=mentor.id,
                    mentor_capacity=capacity_of[candidate.mentor.email],
                    reserved=candidate.reserved,
                    score=candidate.score,
                    profile=stored_profile,
                    state=ChoiceState.LISTED,
                )
            )
            shown.append(letters.shown_profile(stored_profile, rank))
        session.flush()
        letters.queue_from(
            session,
            desk.config,
            desk.notices,
            Notice.OFFER,
            mentee,
            desk.addresses.address(row.id),
            candidates=shown,
            expires=letters.when(row.expires_at),
        )
        made.append(row)
    return made
