"""Reminders before an offer's deadline: once, half way through the step it waits on.

Owns the reminder mail and its exactly-once claim. An open offer waits on one
person at a time: the mentee's choice (from when the offer was sent) or the
invited mentor's yes or no (from the invitation). Each such step gets
``[matching] offer_expires`` and, half way through it, one reminder from the
address the step's letter came from, so a reply lands where the letter's would.
offers.remind_at holds that moment; sending the reminder sets it to NULL with a
conditional UPDATE in the commit that queues the mail, so a second tick, a
restart or a second relay on the same database sends it once. A new step (the
next invitation) sets a new remind_at; a closed offer has none.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice
from relay.offers import letters
from relay.offers.letters import Desk
from relay.store.db import Store
from relay.store.models import MatchOffer, OfferChoice, Participant
from relay.store.states import ChoiceState, OfferState

log = logging.getLogger(__name__)

REMINDER_BATCH = 500


def remind_due(session: Session, desk: Desk, now: datetime) -> int:
    """Remind whoever each open offer half way to its deadline waits on; how many."""
    query = (
        select(MatchOffer)
        .where(
            MatchOffer.state == OfferState.OPEN,
            MatchOffer.remind_at <= now,
            MatchOffer.expires_at > now,  # past it, the deadline moves the offer on instead
        )
        .order_by(MatchOffer.remind_at)
        .limit(REMINDER_BATCH)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)  # another relay has those
    sent = 0
    for offer in session.scalars(query):
        claimed = session.execute(
            update(MatchOffer)
            .where(MatchOffer.id == offer.id, MatchOffer.remind_at.is_not(None))
            .values(remind_at=None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        sent += _remind(session, desk, offer)
    return sent


def _remind(session: Session, desk: Desk, offer: MatchOffer) -> int:
    expires = letters.when(offer.expires_at)
    if offer.chosen_at is None:
        mentee = session.get(Participant, offer.mentee_id)
        assert mentee is not None
        names = session.execute(
            select(OfferChoice.rank, OfferChoice.profile)
            .where(OfferChoice.offer_id == offer.id)
            .order_by(OfferChoice.rank)
        )
        desk.queue(
            session,
            Notice.OFFER_REMINDER,
            mentee,
            desk.addresses.address(offer.id),
            waiting_for="choice",
            candidates=[letters.shown_profile(profile, rank) for rank, profile in names],
            mentee_name="",
            expires=expires,
        )
        return 1
    invited = session.scalar(
        select(OfferChoice).where(
            OfferChoice.offer_id == offer.id, OfferChoice.state == ChoiceState.INVITED
        )
    )
    if invited is None:  # between two steps: nobody to remind
        return 0
    mentor = session.get(Participant, invited.mentor_id)
    assert mentor is not None
    desk.queue(
        session,
        Notice.OFFER_REMINDER,
        mentor,
        desk.addresses.address(invited.id),
        waiting_for="answer",
        candidates=[],
        mentee_name=letters.shown_profile(offer.profile)["name"],
        expires=expires,
    )
    return 1


def remind_all(store: Store, desk: Desk, now: datetime) -> int:
    """Every reminder due, batch by batch; how many were sent."""
    sent = 0
    while True:
        with store.session() as session:
            done = remind_due(session, desk, now)
        sent += done
        if done < REMINDER_BATCH:
            if sent:
                log.info("%d offer reminders sent", sent)
            return sent
