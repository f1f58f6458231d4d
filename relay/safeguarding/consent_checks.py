"""Minors, their guardians' consent, and mentors' background checks.

Owns the gate every new pair passes (`may_pair`: a minor needs recorded
consent; with [safeguarding] require_check a mentor needs a check that has
not expired), recording consent and checks, and the daily look at expiry
dates: the leads are warned once, WARN_DAYS before a check expires; when it
has expired (and require_check is on) the mentor's active pairs are paused
(pause_reason "check_expired") until a renewed check resumes them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Moderator, Notice, Notices
from relay.errors import ConflictError
from relay.mail.addresses import pair_address
from relay.store.models import Pair, Participant
from relay.store.states import PairStatus, Role

WARN_DAYS = 30
CHECK_EXPIRED = "check_expired"


class ConsentError(ConflictError):
    """A pair may not be created or started: consent or a current check is missing."""


def today() -> date:
    return datetime.now(UTC).date()


def parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConflictError(f"{what}: expected a date like 2027-09-30, got {text!r}") from None


def check_current(person: Participant, on: date) -> bool:
    return person.checked_until is not None and person.checked_until >= on


def may_pair(
    mentor: Participant, mentee: Participant, require_check: bool, on: date | None = None
) -> None:
    """Raise ConsentError naming who is missing what; return quietly if the pair may go ahead."""
    on = on or today()
    for person in (mentor, mentee):
        if person.minor and person.consent_date is None:
            raise ConsentError(f"no recorded consent for {person.email} (a minor)")
    if require_check and not check_current(mentor, on):
        when = f"expired on {mentor.checked_until}" if mentor.checked_until else "none recorded"
        raise ConsentError(f"no current background check for {mentor.email} ({when})")


def standing(person: Participant, require_check: bool, on: date | None = None) -> str:
    """One phrase for an inspector: what is recorded, and whether it lets the person be paired."""
    on = on or today()
    if person.role is Role.MENTEE:
        if not person.minor:
            return "adult"
        return "no recorded consent" if person.consent_date is None else "consent recorded"
    if person.checked_until is None:
        return "no check recorded" + (" (cannot be paired)" if require_check else "")
    if person.checked_until < on:
        return "check expired" + (" (pairs paused)" if require_check else "")
    left = (person.checked_until - on).days
    return f"check expires in {left} days" if left <= WARN_DAYS else "check current"


def set_profile(
    participant: Participant,
    *,
    minor: bool = False,
    guardian: str | None = None,
    checked_until: date | None = None,
) -> None:
    if guardian and not minor:
        raise ConflictError("--guardian is for a minor: add --minor too")
    if minor and participant.role is not Role.MENTEE:
        raise ConflictError("only a mentee can be recorded as a minor")
    if checked_until is not None and participant.role is not Role.MENTOR:
        raise ConflictError("background checks are recorded for mentors")
    participant.minor = minor
    participant.guardian_email = guardian
    participant.checked_until = checked_until


def record_consent(participant: Participant, by: str, on: date | None = None) -> None:
    if not participant.minor:
        raise ConflictError(f"{participant.email} is not recorded as a minor")
    if not by.strip():
        raise ConflictError("consent needs --by: who gave it")
    participant.consent_by = by.strip()
    participant.consent_date = on or today()


def record_check(session: Session, participant: Participant, until: date) -> list[Pair]:
    """A renewed check; pairs paused because the old one expired resume if it is current."""
    if participant.role is not Role.MENTOR:
        raise ConflictError("background checks are recorded for mentors")
    participant.checked_until = until
    participant.check_warned_for = None
    if until < today():
        return []
    paused = list(
        session.scalars(
            select(Pair).where(
                Pair.mentor_id == participant.id,
                Pair.status == PairStatus.PAUSED,
                Pair.pause_reason == CHECK_EXPIRED,
            )
        )
    )
    for pair in paused:
        pair.status = PairStatus.ACTIVE
        pair.pause_reason = None
    return paused


def check_expiries(
    session: Session, config: Config, notices: Notices, on: date | None = None
) -> int:
    """Warn the leads of checks running out, pause pairs of expired mentors; notices queued."""
    on = on or today()
    settings = config.safeguarding
    mentors = session.scalars(
        select(Participant).where(
            Participant.role == Role.MENTOR,
            Participant.checked_until.is_not(None),
            Participant.checked_until <= on + timedelta(days=WARN_DAYS),
        )
    )
    queued = 0
    for mentor in mentors:
        assert mentor.checked_until is not None
        expired = mentor.checked_until < on
        paused: list[str] = []
        if expired and settings.require_check:
            for pair in session.scalars(
                select(Pair).where(Pair.mentor_id == mentor.id, Pair.status == PairStatus.ACTIVE)
            ):
                pair.status = PairStatus.PAUSED
                pair.pause_reason = CHECK_EXPIRED
                paused.append(pair_address(pair.token, config.relay.domain))
        # Once per expiry date, and again whenever the expiry paused pairs.
        if mentor.check_warned_for == mentor.checked_until and not paused:
            continue
        mentor.check_warned_for = mentor.checked_until
        for lead in settings.leads:
            notices.queue(
                session,
                Notice.CHECK_EXPIRING,
                Moderator("Safeguarding lead", lead),
                mentor_name=mentor.display_name,
                checked_until=mentor.checked_until.isoformat(),
                expired=expired,
                paused=paused,
            )
            queued += 1
    return queued
