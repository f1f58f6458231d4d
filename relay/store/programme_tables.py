"""The programme's tables: cohorts, scheduled items, check-ins and nudges.

Owns the shape of what relay/programme/ stores (documented for reports in
docs/programmes.md). relay.store.models imports this module, so the tables
are part of Base.metadata wherever the models are used.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from relay.store.base import Base, UtcDateTime, state_enum
from relay.store.states import ItemKind, SendStatus, utcnow


class Cohort(Base):
    """Pairs that run one curriculum for a number of weeks from a start date."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    start_on: Mapped[date] = mapped_column(Date)
    weeks: Mapped[int] = mapped_column(Integer)
    curriculum: Mapped[str] = mapped_column(String(500), default="")  # folder; "": the default
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ScheduledSend(Base):
    """One scheduled item for one participant of a pair, recorded once it is handled.

    The unique (pair, item, participant) key is claimed in the same commit as the
    mail it queues: whoever commits second (a second tick, a second relay) fails
    and sends nothing.
    """

    __tablename__ = "scheduled_items"
    __table_args__ = (
        UniqueConstraint("pair_id", "item_key", "participant_id"),
        # Sent prompts per pair with their times, for reports and the focus list (0016).
        Index("ix_scheduled_items_sent", "kind", "status", "pair_id", "item_key", "done_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    item_key: Mapped[str] = mapped_column(String(200))  # "w04-checkin-checkin_week04.txt.j2"
    week: Mapped[int] = mapped_column(Integer)
    kind: Mapped[ItemKind] = mapped_column(state_enum(ItemKind, "item_kind"))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[SendStatus] = mapped_column(state_enum(SendStatus, "send_status"))
    done_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Checkin(Base):
    """One check-in question to one participant, and their answer.

    The id is random (not sequential): it is part of the signed reply address.
    """

    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    item_key: Mapped[str] = mapped_column(String(200))  # the curriculum item, or "exit"
    week: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    score: Mapped[int | None] = mapped_column(Integer)  # 1-5; None: unanswered or no score
    comment: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # moderation rules hit


class Nudge(Base):
    """A reminder sent about one silence; the key makes each silence nudged once."""

    __tablename__ = "nudges"
    __table_args__ = (UniqueConstraint("pair_id", "participant_id", "silence_since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # "one-sided" or "quiet-pair"
    silence_since: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
