"""The relay's side of matching: what exists already, and applying proposals.

Owns the two places where matching/ meets the store: the pairs a new match
must not repeat (active or ended), and `relay match apply`, which turns a
(possibly coordinator-edited) proposals file into participants and pairs,
with introductions, in one transaction: all of the file or none of it, except
rows the safeguarding gate refuses (a minor without recorded consent, a mentor
without a current check): those are reported and the rest is created.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from matching.proposals import ProposalRow
from relay.delivery.notices import Notices
from relay.errors import ConflictError, InvalidInputError, NotFoundError, RelayError
from relay.safeguarding.consent_checks import ConsentError
from relay.store import registry
from relay.store.models import Pair, Participant
from relay.store.states import Role


def existing_pairs(session: Session) -> set[tuple[str, str]]:
    """(mentor email, mentee email) of every pair there is or was."""
    mentor, mentee = aliased(Participant), aliased(Participant)
    rows = session.execute(
        select(mentor.email, mentee.email)
        .select_from(Pair)
        .join(mentor, mentor.id == Pair.mentor_id)
        .join(mentee, mentee.id == Pair.mentee_id)
    ).all()
    return {(mentor_email, mentee_email) for mentor_email, mentee_email in rows}


def apply_proposals(
    session: Session,
    notices: Notices,
    domain: str,
    rows: list[ProposalRow],
    source: str,
    refused: list[str] | None = None,
    time_zones: dict[str, str] | None = None,
) -> list[registry.NewPair]:
    """The pairs created; ``refused`` collects "FILE line N: why" for rows the gate stopped.

    time_zones: email -> IANA zone from the profiles, for participants without one.
    """
    created = []
    zones = time_zones or {}
    for row in rows:
        try:
            _ensure(session, row.mentor_email, row.mentor_name, Role.MENTOR, domain, zones)
            _ensure(session, row.mentee_email, row.mentee_name, Role.MENTEE, domain, zones)
            created.append(
                registry.create_pair(session, notices, domain, row.mentor_email, row.mentee_email)
            )
        except ConsentError as error:
            if refused is None:
                raise ConflictError(f"{source} line {row.line}: {error}") from None
            refused.append(f"{source} line {row.line}: {error}")
        except RelayError as error:
            raise ConflictError(f"{source} line {row.line}: {error}") from None
    return created


def _ensure(
    session: Session, email: str, name: str, role: Role, domain: str, zones: dict[str, str]
) -> None:
    zone = zones.get(email, "")
    try:
        participant = registry.find_participant(session, email)
    except NotFoundError:
        registry.add_participant(
            session,
            email,
            name or email.partition("@")[0],
            role,
            relay_domain=domain,
            time_zone=zone,
        )
        return
    if not participant.time_zone and zone:
        participant.time_zone = zone


def profile_time_zones(profiles: list[tuple[str, str]]) -> dict[str, str]:
    """(email, time zone text) -> email: zone, for the texts that name an IANA zone."""
    zones = {}
    for email, text in profiles:
        try:
            zones[email] = registry.valid_time_zone(text)
        except InvalidInputError:
            continue  # an offset such as "+05:30" matches people but names no zone
    return zones
