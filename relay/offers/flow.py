"""What a choice, a yes, a no and a deadline do to an offer, each exactly once.

Owns the offer's states (relay.store.states.OfferState and ChoiceState). The mentee
chooses (one number or several, best first); the chosen mentors are invited one at
a time, in the mentee's order and then the rest of the letter's; each invitation
holds that mentor's place until it is answered or runs out ([matching]
offer_expires). A yes creates the pair (in the offer's cohort, with introductions);
a no, silence or a mentor with no free place moves on to the next; when none is
left the offer is declined, the moderators are told and the mentee hears that a
coordinator will be in touch. An offer not chosen from in
time expires the same way.

Exactly once: every step is a conditional UPDATE on the row's state (the offer's
for a choice, the invitation's for an answer), after locking the offer row, in the
same commit as the mail it queues. A second copy of a reply (IMAP and SMTP, a
client resending after a restart) or a second relay finds the state moved and does
nothing; on PostgreSQL the second transaction waits for the first and then sees
its result, so one offer never makes two pairs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.delivery.notices import Notice
from relay.durations import format_duration
from relay.errors import RelayError
from relay.offers import letters, reminders
from relay.offers.letters import Desk as Desk  # where the steps' callers find it
from relay.offers.places import has_room
from relay.programme import cohorts
from relay.store import registry
from relay.store.db import Store
from relay.store.models import Cohort, MatchOffer, OfferChoice, Participant
from relay.store.states import ChoiceState, OfferState

log = logging.getLogger(__name__)

EXPIRY_BATCH = 500
#: Choices that still hold or may take a place while their offer is open.
LIVE_CHOICES = (ChoiceState.LISTED, ChoiceState.INVITED)


class MovedOn(Exception):
    """The offer changed under this transaction; it is rolled back and nothing is done."""


def lock_offer(session: Session, offer_id: int) -> MatchOffer | None:
    """The offer, locked for this transaction (PostgreSQL; SQLite has one writer)."""
    query = (
        select(MatchOffer)
        .where(MatchOffer.id == offer_id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.scalar(query)


def choose(
    session: Session, desk: Desk, offer_id: int, ranks: list[int], answer_id: str, now: datetime
) -> bool:
    """Record the mentee's choice and invite the first chosen mentor; False if moved on."""
    if lock_offer(session, offer_id) is None:
        return False
    taken = session.execute(
        update(MatchOffer)
        .where(
            MatchOffer.id == offer_id,
            MatchOffer.state == OfferState.OPEN,
            MatchOffer.chosen_at.is_(None),
        )
        .values(chosen_at=now, chosen_order=",".join(map(str, ranks)), answer_message_id=answer_id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False
    offer = lock_offer(session, offer_id)
    assert offer is not None
    invite_next(session, desk, offer, now)
    return True


def answer(
    session: Session, desk: Desk, choice_id: int, yes: bool, answer_id: str, now: datetime
) -> bool:
    """A mentor's yes or no to their invitation; False if the offer had moved on."""
    offer_id = session.scalar(select(OfferChoice.offer_id).where(OfferChoice.id == choice_id))
    if offer_id is None or lock_offer(session, offer_id) is None:
        return False
    taken = session.execute(
        update(OfferChoice)
        .where(OfferChoice.id == choice_id, OfferChoice.state == ChoiceState.INVITED)
        .values(
            state=ChoiceState.ACCEPTED if yes else ChoiceState.DECLINED,
            answered_at=now,
            answer_message_id=answer_id,
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False
    offer = lock_offer(session, offer_id)
    assert offer is not None
    if not yes:
        invite_next(session, desk, offer, now)
        return True
    won = session.execute(
        update(MatchOffer)
        .where(MatchOffer.id == offer_id, MatchOffer.state == OfferState.OPEN)
        .values(state=OfferState.ACCEPTED, closed_at=now, reason="the mentor said yes")
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise MovedOn  # an invitation is open only while its offer is: never expected
    session.refresh(offer)
    choice = session.get(OfferChoice, choice_id, populate_existing=True)
    assert choice is not None
    _pair_up(session, desk, offer, choice, now)
    return True


def _pair_up(
    session: Session, desk: Desk, offer: MatchOffer, choice: OfferChoice, now: datetime
) -> None:
    mentor = session.get(Participant, choice.mentor_id)
    mentee = session.get(Participant, offer.mentee_id)
    assert mentor is not None and mentee is not None
    domain = desk.config.relay.domain
    try:
        new = registry.create_pair(session, desk.notices, domain, mentor.email, mentee.email)
        if offer.cohort_id is not None:
            cohort = session.get(Cohort, offer.cohort_id)
            assert cohort is not None
            cohorts.join(new.pair, cohort, now.date(), None, domain)
    except RelayError as error:  # a safeguarding gate (consent, checks) or a pair by hand
        offer.state = OfferState.OPEN  # closed below with the reason, like any dead end
        _close(session, desk, offer, OfferState.DECLINED, f"no pair could be made: {error}", now)
        return
    offer.pair_id = new.pair.id
    _withdraw_rest(session, offer.id)
    log.info("offer %s accepted", offer.id, extra={"fields": {"pair": new.pair.token}})


def invite_next(session: Session, desk: Desk, offer: MatchOffer, now: datetime) -> None:
    """Invite the next listed mentor in the mentee's order who has room, or close the offer."""
    choices = list(
        session.scalars(
            select(OfferChoice)
            .where(OfferChoice.offer_id == offer.id)
            .order_by(OfferChoice.rank)
            .execution_options(populate_existing=True)
        )
    )
    by_rank = {choice.rank: choice for choice in choices}
    named = [int(rank) for rank in offer.chosen_order.split(",") if rank]
    order = [*named, *(c.rank for c in choices if c.rank not in named)]
    for rank in order:
        choice = by_rank[rank]
        if choice.state is not ChoiceState.LISTED:
            continue
        if not has_room(session, choice, offer.id):
            choice.state = ChoiceState.FULL
            continue
        choice.state = ChoiceState.INVITED
        choice.invited_at = now
        offer.expires_at = now + desk.config.offer_expires
        offer.remind_at = now + desk.config.offer_expires / 2
        _invite(session, desk, offer, choice)
        return
    _close(
        session,
        desk,
        offer,
        OfferState.DECLINED,
        "none of the mentors offered could take them (declined, no answer, or full)",
        now,
    )


def _invite(session: Session, desk: Desk, offer: MatchOffer, choice: OfferChoice) -> None:
    mentor = session.get(Participant, choice.mentor_id)
    assert mentor is not None
    desk.queue(
        session,
        Notice.OFFER_INVITATION,
        mentor,
        desk.addresses.address(choice.id),
        mentee=letters.shown_profile(offer.profile),
        reasons=json.loads(choice.profile or "{}").get("reasons", []),
        expires=letters.when(offer.expires_at),
    )


def expire_due(session: Session, desk: Desk, now: datetime) -> int:
    """Move on every open offer whose deadline has passed; how many moved."""
    query = (
        select(MatchOffer)
        .where(MatchOffer.state == OfferState.OPEN, MatchOffer.expires_at <= now)
        .order_by(MatchOffer.expires_at)
        .limit(EXPIRY_BATCH)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)  # another relay has those
    due = list(session.scalars(query))
    for offer in due:
        if offer.chosen_at is None:
            waited = format_duration(desk.config.offer_expires, exact=True)
            _close(session, desk, offer, OfferState.EXPIRED, f"no choice within {waited}", now)
            continue
        session.execute(
            update(OfferChoice)
            .where(OfferChoice.offer_id == offer.id, OfferChoice.state == ChoiceState.INVITED)
            .values(state=ChoiceState.EXPIRED)
            .execution_options(synchronize_session=False)
        )
        invite_next(session, desk, offer, now)
    return len(due)


def cancel(session: Session, desk: Desk, offer_id: int, by: str, now: datetime) -> bool:
    """A coordinator withdraws an open offer; the mentee and an invited mentor are told.

    Later replies are answered "moved on". The letters come from the addresses the
    offer and the invitation were sent from, and name nobody's address.
    """
    offer = lock_offer(session, offer_id)
    if offer is None or offer.state is not OfferState.OPEN:
        return False
    invited = session.scalar(
        select(OfferChoice).where(
            OfferChoice.offer_id == offer.id, OfferChoice.state == ChoiceState.INVITED
        )
    )
    offer.state = OfferState.CANCELLED
    offer.closed_at = now
    offer.remind_at = None
    offer.reason = f"cancelled by {by}"
    _withdraw_rest(session, offer.id)
    mentee = session.get(Participant, offer.mentee_id)
    assert mentee is not None
    desk.queue(
        session,
        Notice.OFFER_CANCELLED,
        mentee,
        desk.addresses.address(offer.id),
        sent=letters.when(offer.sent_at),
    )
    if invited is not None:
        mentor = session.get(Participant, invited.mentor_id)
        assert mentor is not None
        desk.queue(
            session,
            Notice.OFFER_WITHDRAWN,
            mentor,
            desk.addresses.address(invited.id),
            mentee_name=letters.shown_profile(offer.profile)["name"],
        )
    return True


def _close(
    session: Session, desk: Desk, offer: MatchOffer, state: OfferState, reason: str, now: datetime
) -> None:
    if offer.state is not OfferState.OPEN:
        return
    offer.state = state
    offer.closed_at = now
    offer.remind_at = None
    offer.reason = reason
    _withdraw_rest(session, offer.id)
    session.flush()
    mentee = session.get(Participant, offer.mentee_id)
    assert mentee is not None
    choices = session.scalars(
        select(OfferChoice).where(OfferChoice.offer_id == offer.id).order_by(OfferChoice.rank)
    )
    letters.no_choice_left(
        session,
        desk.config,
        desk.notices,
        offer_id=offer.id,
        mentee_name=mentee.display_name,
        mentee_email=mentee.email,
        reason=reason,
        state=state.value,
        choices=[
            {"rank": c.rank, "name": letters.shown_profile(c.profile)["name"], "state": c.state}
            for c in choices
        ],
    )
    desk.queue(  # never left waiting in silence
        session,
        Notice.OFFER_CLOSED,
        mentee,
        desk.addresses.address(offer.id),
        state=state.value,
    )
    log.info("offer %s %s: %s", offer.id, state.value, reason)


def _withdraw_rest(session: Session, offer_id: int) -> None:
    session.execute(
        update(OfferChoice)
        .where(OfferChoice.offer_id == offer_id, OfferChoice.state.in_(LIVE_CHOICES))
        .values(state=ChoiceState.WITHDRAWN)
        .execution_options(synchronize_session="fetch")
    )


def expire_all(store: Store, desk: Desk, now: datetime) -> int:
    """The scheduler's tick for offers: every one past its deadline moved on, batch by
    batch (how many is returned), then those half way to it reminded (relay.offers.reminders).
    """
    moved = 0
    while True:
        with store.session() as session:
            done = expire_due(session, desk, now)
        moved += done
        if done < EXPIRY_BATCH:
            break
    reminders.remind_all(store, desk, now)
    return moved
