"""The safeguarding tables: concerns and their history, the access log, spot checks, overdue alerts.

Kept apart from relay.store.models because they are a concern of their own
(relay/safeguarding owns the logic) and change with it; they share its Base,
so one metadata holds every table; migrations/env.py imports this module so the
migrations check covers them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relay.store.base import Base, UtcDateTime, state_enum
from relay.store.models import Message, Pair, Participant
from relay.store.states import ConcernStatus, utcnow


class Concern(Base):
    """A safeguarding record: who raised it, how, about which pairs and messages."""

    __tablename__ = "concerns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # mail, coordinator, escalation, sample
    raised_by: Mapped[str] = mapped_column(String(320))  # a participant's name or a staff name
    raiser_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    summary: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # the mail, for a concern by mail
    status: Mapped[ConcernStatus] = mapped_column(
        state_enum(ConcernStatus, "concern_status"), default=ConcernStatus.OPEN
    )
    reference: Mapped[str] = mapped_column(String(200), default="")  # e.g. a referral number
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    raiser: Mapped[Participant | None] = relationship()
    pairs: Mapped[list[Pair]] = relationship(secondary="concern_pairs", order_by="Pair.id")
    messages: Mapped[list[Message]] = relationship(
        secondary="concern_messages", order_by="Message.id"
    )
    events: Mapped[list[ConcernEvent]] = relationship(
        back_populates="concern", order_by="ConcernEvent.id"
    )


class ConcernPair(Base):
    __tablename__ = "concern_pairs"

    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), primary_key=True, index=True)


class ConcernMessage(Base):
    __tablename__ = "concern_messages"

    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True, index=True)


class ConcernEvent(Base):
    """One change to a concern: who, when, what (the status) and why (the note)."""

    __tablename__ = "concern_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), index=True)
    actor: Mapped[str] = mapped_column(String(320))
    status: Mapped[ConcernStatus] = mapped_column(state_enum(ConcernStatus, "concern_event_status"))
    note: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    concern: Mapped[Concern] = relationship(back_populates="events")


class AccessLogEntry(Base):
    """One reading of message content: who, when, with which command, of what.

    Append-only: no command updates or deletes a row, and the migration adds
    triggers so that even SQL against the database cannot.
    """

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader: Mapped[str] = mapped_column(String(200))
    command: Mapped[str] = mapped_column(String(64))
    pair_id: Mapped[int | None] = mapped_column(ForeignKey("pairs.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(Integer)  # no FK: a reading outlives nothing
    concern_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    read_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SpotCheck(Base):
    """A sampled message somebody has read: ok, or a concern."""

    __tablename__ = "spot_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    verdict: Mapped[str] = mapped_column(String(16))  # ok | concern
    checked_by: Mapped[str] = mapped_column(String(200))
    concern_id: Mapped[int | None] = mapped_column(ForeignKey("concerns.id"))
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OverdueAlert(Base):
    """A held message the leads were told is overdue: once per message, never twice."""

    __tablename__ = "overdue_alerts"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    alerted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
