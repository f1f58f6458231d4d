"""`relay offers`: where every offer stands, for a coordinator.

Owns the rows the command prints: the mentee, the state, the step it waits on
(the mentee's choice, or which mentor is invited) with its deadline, and each
mentor named with their state. Mentees with no choice left (declined, expired)
are the ones a coordinator must act on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.mail.addresses import pair_address
from relay.offers.letters import shown_profile
from relay.store.models import Cohort, MatchOffer, OfferChoice, Pair, Participant
from relay.store.states import ChoiceState, OfferState


@dataclass(frozen=True)
class OfferLine:
    offer: MatchOffer
    mentee: Participant
    choices: list[tuple[OfferChoice, Participant]]
    cohort: str
    pair: str

    @property
    def waiting_on(self) -> str:
        """What the offer waits for now, in words ("" once closed)."""
        if self.offer.state is not OfferState.OPEN:
            return ""
        if self.offer.chosen_at is None:
            return "the mentee's choice"
        invited = [m for c, m in self.choices if c.state is ChoiceState.INVITED]
        return f"{invited[0].display_name}'s answer" if invited else ""

    def to_json(self) -> dict[str, Any]:
        offer = self.offer
        return {
            "id": offer.id,
            "mentee": self.mentee.display_name,
            "mentee_email": self.mentee.email,
            "state": offer.state.value,
            "waiting_on": self.waiting_on,
            "cohort": self.cohort or None,
            "sent_at": _iso(offer.sent_at),
            "expires_at": _iso(offer.expires_at) if offer.state is OfferState.OPEN else None,
            "chosen": [int(r) for r in offer.chosen_order.split(",") if r],
            "closed_at": _iso(offer.closed_at),
            "reason": offer.reason,
            "pair": self.pair or None,
            "choices": [
                {
                    "rank": choice.rank,
                    "mentor": mentor.display_name,
                    "mentor_email": mentor.email,
                    "score": round(choice.score, 3),
                    "reserved": choice.reserved,
                    "state": choice.state.value,
                    "reasons": shown_profile(choice.profile)["reasons"],
                }
                for choice, mentor in self.choices
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="minutes") if moment else None


def offer_lines(session: Session, domain: str, state: OfferState | None) -> list[OfferLine]:
    query = select(MatchOffer).order_by(MatchOffer.sent_at, MatchOffer.id)
    if state is not None:
        query = query.where(MatchOffer.state == state)
    offers = list(session.scalars(query))
    ids = [offer.id for offer in offers]
    choices: dict[int, list[tuple[OfferChoice, Participant]]] = defaultdict(list)
    for choice, mentor in session.execute(
        select(OfferChoice, Participant)
        .join(Participant, Participant.id == OfferChoice.mentor_id)
        .where(OfferChoice.offer_id.in_(ids))
        .order_by(OfferChoice.offer_id, OfferChoice.rank)
    ).all():
        choices[choice.offer_id].append((choice, mentor))
    cohort_names = {cid: name for cid, name in session.execute(select(Cohort.id, Cohort.name))}
    lines = []
    for offer in offers:
        mentee = session.get(Participant, offer.mentee_id)
        assert mentee is not None
        token = session.scalar(select(Pair.token).where(Pair.id == offer.pair_id))
        lines.append(
            OfferLine(
                offer=offer,
                mentee=mentee,
                choices=choices[offer.id],
                cohort=cohort_names.get(offer.cohort_id, "") if offer.cohort_id else "",
                pair=pair_address(token, domain) if token else "",
            )
        )
    return lines
