"""Concerns: safeguarding records, their history, and the leads' alert.

Owns opening a concern (by a coordinator, by mail to concern@, by an
escalating rule, from a spot check), linking it to pairs and messages,
changing its status with a note (every change is a ConcernEvent: who, when,
what, why; nothing is ever overwritten without one), and the immediate alert
to every lead. An alert names the concern id, pair addresses and display
names: never a participant's real address.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import hidden_addresses
from relay.delivery.notices import Moderator, Notice, Notices
from relay.errors import ConflictError, NotFoundError
from relay.mail.addresses import pair_address
from relay.outbound.scrub_text import replace_addresses
from relay.store.db import Store
from relay.store.models import Message, Pair, Participant, ParticipantAddress
from relay.store.safeguarding_models import Concern, ConcernEvent
from relay.store.states import OPEN_PAIR_STATES, ConcernStatus

log = logging.getLogger(__name__)
STATUS_WORDS = tuple(status.value for status in ConcernStatus)


def parse_status(word: str) -> ConcernStatus:
    try:
        return ConcernStatus(word.strip().lower())
    except ValueError:
        raise ConflictError(
            f"unknown concern status {word!r} (one of {', '.join(STATUS_WORDS)})"
        ) from None


def open_concern(
    session: Session,
    *,
    source: str,
    raised_by: str,
    summary: str,
    pairs: Sequence[Pair] = (),
    messages: Sequence[Message] = (),
    raiser: Participant | None = None,
    raw: bytes | None = None,
) -> Concern:
    concern = Concern(
        source=source,
        raised_by=raised_by,
        raiser=raiser,
        summary=summary,
        raw=raw,
        status=ConcernStatus.OPEN,
        reference="",
    )
    concern.pairs = list(dict.fromkeys(pairs))
    concern.messages = list(dict.fromkeys(messages))
    session.add(concern)
    session.flush()
    session.add(
        ConcernEvent(
            concern_id=concern.id,
            actor=raised_by,
            status=ConcernStatus.OPEN,
            note=f"opened ({source}): {summary}",
        )
    )
    return concern


def get_concern(session: Session, concern_id: int) -> Concern:
    concern = session.get(Concern, concern_id)
    if concern is None:
        raise NotFoundError(f"no concern {concern_id}")
    return concern


def list_concerns(session: Session, statuses: Iterable[ConcernStatus] = ()) -> list[Concern]:
    query = select(Concern).order_by(Concern.id)
    wanted = list(statuses)
    if wanted:
        query = query.where(Concern.status.in_(wanted))
    return list(session.scalars(query))


def update_concern(
    session: Session,
    concern_id: int,
    status: ConcernStatus,
    note: str,
    actor: str,
    reference: str | None = None,
) -> Concern:
    """A new status with why; the reference (e.g. a referral number) replaces the old one."""
    if not note.strip():
        raise ConflictError("a concern update needs a --note saying why")
    concern = get_concern(session, concern_id)
    concern.status = status
    if reference is not None:
        concern.reference = reference
    session.add(
        ConcernEvent(
            concern_id=concern.id,
            actor=actor,
            status=status,
            note=note.strip(),
            reference=reference if reference is not None else "",
        )
    )
    return concern


def pair_lines(pairs: Iterable[Pair], domain: str) -> list[dict[str, str]]:
    return [
        {
            "address": pair_address(pair.token, domain),
            "status": pair.status.value,
            "mentor": pair.mentor.display_name,
            "mentee": pair.mentee.display_name,
        }
        for pair in pairs
    ]


def alert_leads(
    session: Session,
    config: Config,
    notices: Notices,
    concern: Concern,
    headline: str,
    reasons: Sequence[str] = (),
    message_ids: Sequence[int] = (),
) -> int:
    """Tell every lead now (one notice each, not a digest); how many were queued."""
    hidden = tuple(address for pair in concern.pairs for address in hidden_addresses(pair))
    safe_headline = replace_addresses(headline, hidden, "[address removed]")
    safe_reasons = [replace_addresses(reason, hidden, "[address removed]") for reason in reasons]
    for lead in config.safeguarding.leads:
        notices.queue(
            session,
            Notice.LEAD_ALERT,
            Moderator("Safeguarding lead", lead),
            concern_id=concern.id,
            headline=safe_headline,
            raised_by=concern.raised_by,
            pairs=pair_lines(concern.pairs, config.relay.domain),
            message_ids=list(message_ids),
            reasons=safe_reasons,
        )
    return len(config.safeguarding.leads)


# -- concern@ ------------------------------------------------------------------------


def writer_of(session: Session, from_address: str) -> Participant | None:
    return session.scalar(
        select(Participant)
        .join(ParticipantAddress, ParticipantAddress.participant_id == Participant.id)
        .where(ParticipantAddress.email == from_address)
    )


def take_concern_from(
    store: Store,
    config: Config,
    notices: Notices,
    envelope_from: str,
    message: EmailMessage,
    raw: bytes,
) -> bool:
    """Mail to concern@: a concern if a participant wrote it, else dropped quietly."""
    from relay.errors import RefusedError
    from relay.mail.reading import single_from_address

    try:
        writer = single_from_address(message)
    except RefusedError:
        writer = ""
    sender = "" if not envelope_from or envelope_from == "<>" else writer
    return take_concern(store, config, notices, sender, message, raw)


def take_concern(
    store: Store,
    config: Config,
    notices: Notices,
    from_address: str,
    message: EmailMessage,
    raw: bytes,
) -> bool:
    """Intake's concern@ branch, in its own commit; True if a concern was stored.

    ``from_address`` is empty for a bounce or an unreadable From: never a concern.
    """
    with store.session() as session:
        concern = take_concern_mail(session, config, notices, from_address, message, raw)
        if concern is None:
            log.info("dropped mail to the concern address from a non-participant")
            return False
        log.info("concern %s raised by mail", concern.id)
        return True


def take_concern_mail(
    session: Session,
    config: Config,
    notices: Notices,
    from_address: str,
    message: EmailMessage,
    raw: bytes,
) -> Concern | None:
    """Store mail to concern@ from a participant; None (nothing stored) from anyone else.

    The concern is linked to the writer and every open pair of theirs, is never
    forwarded, and is acknowledged to the writer; the leads are alerted at once.
    """
    writer = writer_of(session, from_address) if from_address else None
    if writer is None:
        return None
    pairs = list(
        session.scalars(
            select(Pair)
            .where(
                (Pair.mentor_id == writer.id) | (Pair.mentee_id == writer.id),
                Pair.status.in_(OPEN_PAIR_STATES),
            )
            .order_by(Pair.id)
        )
    )
    subject = str(message.get("Subject", "")).strip() or "(no subject)"
    who = f"{writer.display_name} ({writer.role.value})"
    concern = open_concern(
        session,
        source="mail",
        raised_by=who,
        summary=subject[:1000],
        pairs=pairs,
        raiser=writer,
        raw=raw,
    )
    notices.queue(session, Notice.CONCERN_RECEIVED, writer, concern_id=concern.id)
    alert_leads(session, config, notices, concern, f"{who} wrote to the concern address: {subject}")
    return concern
