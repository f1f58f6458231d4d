"""The tables of match offers by email: one offer per mentee, one row per mentor named.

Owns the shape of what relay/offers stores (documented in docs/matching.md).
relay.store.models imports this module, so the tables are part of Base.metadata
wherever the models are used. Ids are random 63-bit numbers, never sequential:
they are part of the signed ``offer-<id>-<sig>@`` reply addresses (an offer's id
for the mentee, a choice's id for that mentor's invitation).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from relay.store.base import Base, UtcDateTime, state_enum
from relay.store.states import ChoiceState, OfferState, utcnow


class MatchOffer(Base):
    """A few mentors offered to one mentee, who picks one by replying with a number."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mentee_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id"))
    state: Mapped[OfferState] = mapped_column(
        state_enum(OfferState, "offer_state"), default=OfferState.OPEN
    )
    profile: Mapped[str] = mapped_column(Text, default="{}")  # the mentee's, as JSON
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The mentee's choice or the open invitation must be answered by then.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # Half way to expires_at, the person it waits on is reminded; NULL once they were.
    remind_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    chosen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    chosen_order: Mapped[str] = mapped_column(String(100), default="")  # "2,1,3": ranks
    answer_message_id: Mapped[str | None] = mapped_column(String(998))  # the choice's
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(300), default="")  # why it closed
    pair_id: Mapped[int | None] = mapped_column(ForeignKey("pairs.id"))


class OfferChoice(Base):
    """One mentor named in an offer, and their invitation once the mentee chose them."""

    __tablename__ = "offer_choices"
    __table_args__ = (UniqueConstraint("offer_id", "rank"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)  # the number in the mentee's letter
    mentor_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    mentor_capacity: Mapped[int] = mapped_column(Integer)  # from mentors.csv at offer time
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)  # holds a place from the start
    score: Mapped[float] = mapped_column(Float)
    profile: Mapped[str] = mapped_column(Text, default="{}")  # the mentor's, with reasons
    state: Mapped[ChoiceState] = mapped_column(
        state_enum(ChoiceState, "choice_state"), default=ChoiceState.LISTED
    )
    invited_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answer_message_id: Mapped[str | None] = mapped_column(String(998))
