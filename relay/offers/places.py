"""A mentor's places: what takes or holds one, and the lock that keeps a count true.

Owns the capacity arithmetic that `relay match offer` and invitations share. A
place is taken by an active or paused pair, and held by an open offer's reserved
choice (while still listed) or by any open invitation.

Counting is only true while nobody else writes: a round reads, computes for
seconds, then writes, so the count it wrote from is re-checked inside the
writing transaction, under a lock:
- PostgreSQL: a round takes the transaction-scoped advisory lock PLACES_LOCK
  exclusively; an invitation takes it shared, so invitations run side by side
  (the mentor's row lock orders two invitations to one mentor) but never in the
  middle of a round's write.
- SQLite: every writing transaction is BEGIN IMMEDIATE (relay.store.db), one
  writer at a time across processes, so the re-check inside it is already alone.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from relay.store.models import MatchOffer, OfferChoice, Pair, Participant
from relay.store.states import OPEN_PAIR_STATES, ChoiceState, OfferState

#: pg_advisory_xact_lock's key for "the places of all mentors" ("offers" in ASCII).
PLACES_LOCK = 0x6F6666657273


def _on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_places(session: Session) -> None:
    """Alone with the places until this transaction ends (a round, before its re-check)."""
    if _on_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(PLACES_LOCK)))


def share_places(session: Session) -> None:
    """No round writes until this transaction ends (an invitation, before counting)."""
    if _on_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock_shared(PLACES_LOCK)))


def holding() -> ColumnElement[bool]:
    """When a choice holds its mentor's place (joined with its offer)."""
    return and_(
        MatchOffer.state == OfferState.OPEN,
        or_(
            OfferChoice.state == ChoiceState.INVITED,
            and_(OfferChoice.reserved.is_(True), OfferChoice.state == ChoiceState.LISTED),
        ),
    )


def held_places(session: Session) -> Counter[int]:
    """Places open offers hold, per mentor id."""
    rows = session.execute(
        select(OfferChoice.mentor_id, func.count(func.distinct(OfferChoice.offer_id)))
        .join(MatchOffer, MatchOffer.id == OfferChoice.offer_id)
        .where(holding())
        .group_by(OfferChoice.mentor_id)
    )
    return Counter({mentor_id: count for mentor_id, count in rows})


def taken_places(session: Session) -> Counter[int]:
    """Places active and paused pairs take, per mentor id."""
    rows = session.execute(
        select(Pair.mentor_id, func.count())
        .where(Pair.status.in_(OPEN_PAIR_STATES))
        .group_by(Pair.mentor_id)
    )
    return Counter({mentor_id: count for mentor_id, count in rows})


def has_room(session: Session, choice: OfferChoice, offer_id: int) -> bool:
    """Whether the mentor has a place: capacity - open pairs - places other offers hold."""
    share_places(session)
    mentor = select(Participant.id).where(Participant.id == choice.mentor_id)
    if _on_postgres(session):
        session.execute(mentor.with_for_update())  # two offers never count the same place
    pairs = session.scalar(
        select(func.count())
        .select_from(Pair)
        .where(Pair.mentor_id == choice.mentor_id, Pair.status.in_(OPEN_PAIR_STATES))
    )
    held = session.scalar(
        select(func.count(func.distinct(OfferChoice.offer_id)))
        .join(MatchOffer, MatchOffer.id == OfferChoice.offer_id)
        .where(holding(), OfferChoice.mentor_id == choice.mentor_id, MatchOffer.id != offer_id)
    )
    return (pairs or 0) + (held or 0) < choice.mentor_capacity
