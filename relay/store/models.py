"""The store's tables, as SQLAlchemy 2 typed models.

Owns the shape of the data: participants and their addresses, pairs, the
messages received for a pair (the transcript), and the outbox of mail the
relay sends (forwarded messages and notices alike). The safeguarding tables
share this Base from relay.store.safeguarding_models. Migrations in
migrations/versions must produce exactly these tables (a test runs
alembic's check).
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relay.store.base import NAMING_CONVENTION, Base, UtcDateTime, state_enum
from relay.store.states import (
    DeliveryStatus,
    MessageStatus,
    ModerationVerdict,
    OutboxKind,
    PairStatus,
    Role,
    utcnow,
)


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(state_enum(Role, "role"))
    watched: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Safeguarding (relay/safeguarding/consent_checks.py): minors, consent, checks.
    minor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    guardian_email: Mapped[str | None] = mapped_column(String(320))
    consent_by: Mapped[str | None] = mapped_column(String(200))  # who gave it, as recorded
    consent_date: Mapped[date | None] = mapped_column(Date)
    checked_until: Mapped[date | None] = mapped_column(Date)  # background check expiry
    check_warned_for: Mapped[date | None] = mapped_column(Date)  # expiry the leads were warned of
    time_zone: Mapped[str] = mapped_column(String(64), default="", server_default="")  # IANA
    # Opted out of the programme's reminders (prompts and nudges) via List-Unsubscribe.
    reminders_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    addresses: Mapped[list[ParticipantAddress]] = relationship(
        back_populates="participant", cascade="all, delete-orphan"
    )


class ParticipantAddress(Base):
    """Every address a participant may write from (the primary one included)."""

    __tablename__ = "participant_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)

    participant: Mapped[Participant] = relationship(back_populates="addresses")


class Pair(Base):
    __tablename__ = "pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    mentee_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    status: Mapped[PairStatus] = mapped_column(
        state_enum(PairStatus, "pair_status"), default=PairStatus.ACTIVE
    )
    watched: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Why a paused pair is paused when the relay paused it ("escalation", "check_expired").
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    ended_reason: Mapped[str | None] = mapped_column(String(32))  # see relay.programme.ending
    ended_by: Mapped[str | None] = mapped_column(String(200))  # a login name, or "programme"
    # The programme (relay/programme/): a pair in a cohort runs its curriculum from its
    # own week 1 (started_on) for `weeks` weeks; next_item_at is when the scheduler
    # next has something to send it (None: nothing more), so an idle tick reads no pair.
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id"), index=True)
    started_on: Mapped[date | None] = mapped_column(Date)
    weeks: Mapped[int | None] = mapped_column(Integer)
    next_item_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)

    mentor: Mapped[Participant] = relationship(foreign_keys=[mentor_id])
    mentee: Mapped[Participant] = relationship(foreign_keys=[mentee_id])
    cohort: Mapped[Cohort | None] = relationship()

    def partner_of(self, participant_id: int) -> Participant:
        return self.mentee if participant_id == self.mentor_id else self.mentor


class Message(Base):
    """One piece of mail received for a pair: the transcript's row."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_pair_original", "pair_id", "original_message_id"),
        # The rules' counters: a sender's mail in a pair, and in the last hour. They
        # count from the index alone (status and unverified in it): a column stored
        # after raw would make SQLite read each counted message's whole body.
        Index("ix_messages_pair_sender", "pair_id", "sender_id", "status", "unverified"),
        # unverified before received_at: the rate rule's count is one range (0019).
        Index("ix_messages_sender_received", "sender_id", "unverified", "received_at"),
        # The report (migration 0014): a pair's messages in time order, each side's
        # first and last; held and decided mail.
        Index("ix_messages_pair_received", "pair_id", "received_at", "sender_id"),
        Index("ix_messages_pair_sender_received", "pair_id", "sender_id", "received_at"),
        Index("ix_messages_status", "status"),
        Index("ix_messages_decided_at", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own (0019): the four above that begin with pair_id serve.
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    status: Mapped[MessageStatus] = mapped_column(state_enum(MessageStatus, "message_status"))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text, default="")
    original_message_id: Mapped[str | None] = mapped_column(String(998))
    relay_message_id: Mapped[str] = mapped_column(String(255), unique=True)
    hits: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of rule hits
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # by a moderator
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # body removed (retention)
    # The From named a participant but was not authenticated (an "authentication" hit):
    # the rules' counters leave such mail out, it may not be theirs.
    unverified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    pair: Mapped[Pair] = relationship()
    sender: Mapped[Participant] = relationship(foreign_keys=[sender_id])
    recipient: Mapped[Participant] = relationship(foreign_keys=[recipient_id])


class OutboxEntry(Base):
    """One mail the relay sends: a forwarded message or a notice, with its delivery state."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[OutboxKind] = mapped_column(state_enum(OutboxKind, "outbox_kind"))
    notice: Mapped[str | None] = mapped_column(String(32))  # the template, for notices
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[DeliveryStatus] = mapped_column(
        state_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When the give_up_after clock started, if not at created_at: `relay queue retry`
    # restarts it, or a retried row would fail again at its first temporary error.
    retry_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a DSN naming this row's Message-ID was taken: each row takes one, once.
    bounced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    message: Mapped[Message | None] = relationship()


class ModerationAction(Base):
    """The audit trail: who decided what about a held message, when, and why."""

    __tablename__ = "moderation_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    moderator: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[ModerationVerdict] = mapped_column(
        state_enum(ModerationVerdict, "moderation_verdict")
    )
    redacted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    message: Mapped[Message] = relationship()


class RelaySecret(Base):
    """Secrets the relay generates for itself (the VERP signing key), shared by all processes."""

    __tablename__ = "relay_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class DirectoryVersion(Base):
    """One row whose number changes with every change to pairs, participants or addresses.

    Triggers (migration 0010) bump it; the daemon's in-memory pair directory
    reloads when the number it holds is no longer the one stored here.
    """

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class ImapTaken(Base):
    """One message the IMAP source has taken from a mailbox, so it is never taken twice.

    A message is known by its mailbox, the mailbox's UIDVALIDITY and its UID (RFC 3501
    promises that triple is never reused). The row is written in the same commit as
    the stored message (or on its own for a refusal, which stores nothing else), so a
    crash before the message is moved out of the mailbox leaves it recognised: on the
    next round it is only moved.
    """

    __tablename__ = "imap_taken"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500))  # user@host/mailbox
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned in IMAP
    uid: Mapped[int] = mapped_column(BigInteger)
    refused: Mapped[bool] = mapped_column(Boolean)  # True: goes to the refused folder
    reply: Mapped[str] = mapped_column(String(200))  # what an SMTP client would have been told
    message_ids: Mapped[str] = mapped_column(String(200), default="")  # stored messages, "1,2"
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# -- safeguarding (relay/safeguarding) -------------------------------------------------


class SetAside(Base):
    """Mail for a pair whose From names no participant of it: kept, never relayed.

    The sender got the same 250 as anyone (the answer must not tell whether a
    guessed address is a participant's), so the message is kept for moderators
    to read rather than dropped. ``outcome`` is what the authentication action
    said: held (kept), rejected (the client was told 550) or discarded.
    """

    __tablename__ = "set_aside"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    from_address: Mapped[str] = mapped_column(String(320))
    peer: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    pair: Mapped[Pair] = relationship()


class DaemonHealth(Base):
    """Each running `relay serve` writes here every [daemon] health_interval.

    `relay status` reads it: a beat that is too old means the daemon cannot
    write to the database (read-only, full, gone); ``problem`` is what the
    daemon itself found wrong on its last check (an unwritable Maildir).
    """

    __tablename__ = "daemon_health"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    problem: Mapped[str | None] = mapped_column(Text)


# The programme's tables live in their own module; importing it here registers them
# with Base.metadata, so every user of the models (and Alembic) sees them. (The
# safeguarding tables import this module, so migrations/env.py imports them.)
from relay.store.offer_tables import MatchOffer, OfferChoice  # noqa: E402
from relay.store.programme_tables import (  # noqa: E402
    Checkin,
    Cohort,
    Nudge,
    ScheduledSend,
)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Checkin",
    "Cohort",
    "MatchOffer",
    "Nudge",
    "OfferChoice",
    "ScheduledSend",
    "UtcDateTime",
    "state_enum",
]
