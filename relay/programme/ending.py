"""How a pair ends: by a coordinator, or at the end of its weeks; and renewing it.

Owns the end of a relationship done properly: the pair stops taking mail,
the reason and who ended it are stored (``pairs.ended_reason``,
``ended_by``, ``ended_at``), both participants get a closing notice (a
completed pair's one offers renewal), and each gets the exit check-in from
its own signed reply address. Renewing a completed (or ended) pair opens
it again for more weeks, with the same address.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notice, Notices
from relay.errors import ConflictError
from relay.mail.addresses import SignedAddresses, display_address, pair_address
from relay.outbound.signing import outbound_bytes
from relay.programme.checkins import new_checkin_id
from relay.programme.limits import END_REASONS
from relay.programme.plan import current_week
from relay.store.models import Checkin, OutboxEntry, Pair
from relay.store.states import OutboxKind, PairStatus

PROGRAMME_ACTOR = "programme"  # ended_by when the scheduler completes a pair


def end(
    session: Session,
    config: Config,
    notices: Notices,
    checkin_addresses: SignedAddresses,
    pair: Pair,
    reason: str,
    by: str,
    now: datetime,
) -> None:
    if reason not in END_REASONS:
        raise ConflictError(f"unknown reason {reason!r} (one of {', '.join(END_REASONS)})")
    if pair.status is PairStatus.ENDED:
        raise ConflictError(f"{pair_address(pair.token, config.relay.domain)} has already ended")
    _close(session, config, notices, checkin_addresses, pair, reason, by, now, Notice.PAIR_ENDED)


def complete(
    session: Session,
    config: Config,
    notices: Notices,
    checkin_addresses: SignedAddresses,
    pair: Pair,
    now: datetime,
) -> None:
    """The end of the pair's weeks: ended as completed, thanked, offered renewal."""
    _close(
        session,
        config,
        notices,
        checkin_addresses,
        pair,
        "completed",
        PROGRAMME_ACTOR,
        now,
        Notice.COMPLETED,
    )


def renew(pair: Pair, weeks: int, now: datetime, domain: str) -> None:
    """More weeks for a pair: open again (if it had ended), the same address."""
    if weeks < 1:
        raise ConflictError("--weeks must be at least 1")
    if pair.started_on is None or pair.weeks is None:
        raise ConflictError(f"{pair_address(pair.token, domain)} is not in a cohort")
    if pair.status is PairStatus.ENDED and pair.ended_reason == "safeguarding":
        raise ConflictError("a pair ended for safeguarding reasons cannot be renewed")
    pair.weeks = max(pair.weeks, current_week(pair.started_on, now.date()) - 1) + weeks
    pair.status = PairStatus.ACTIVE if pair.status is PairStatus.ENDED else pair.status
    pair.ended_at = pair.ended_reason = pair.ended_by = None
    pair.next_item_at = now  # the next tick plans the new weeks from here


def _close(
    session: Session,
    config: Config,
    notices: Notices,
    checkin_addresses: SignedAddresses,
    pair: Pair,
    reason: str,
    by: str,
    now: datetime,
    notice: Notice,
) -> None:
    pair.status = PairStatus.ENDED
    pair.ended_at = now
    pair.ended_reason = reason
    pair.ended_by = by
    pair.next_item_at = None
    address = pair_address(pair.token, config.relay.domain)
    week = current_week(pair.started_on, now.date()) if pair.started_on else 0
    for participant in (pair.mentor, pair.mentee):
        partner = pair.partner_of(participant.id)
        notices.queue(
            session,
            notice,
            participant,
            partner_name=partner.display_name,
            pair_address=address,
            weeks=pair.weeks or 0,
        )
        checkin = Checkin(
            id=new_checkin_id(),
            pair_id=pair.id,
            participant_id=participant.id,
            item_key="exit",
            week=week,
            sent_at=now,
            flagged=False,
        )
        session.add(checkin)
        question = notices.render(
            Notice.EXIT_CHECKIN, participant, partner_name=partner.display_name
        )
        # Like every check-in, it comes from its own reply address.
        question.replace_header(
            "From",
            display_address(config.relay.programme_name, checkin_addresses.address(checkin.id)),
        )
        session.add(
            OutboxEntry(
                kind=OutboxKind.NOTICE,
                notice=Notice.EXIT_CHECKIN,
                recipient=participant.email,
                content=outbound_bytes(config, question),
            )
        )


def started_on_for(cohort_start: date, today: date, given: date | None) -> date:
    """A pair's own week 1: the date given, else the cohort's start, or today if that passed."""
    if given is not None:
        return given
    return max(cohort_start, today)
