"""Nudges: one gentle reminder per silence, never repeated, never to paused or ended pairs.

Owns deciding who gets a nudge. A participant who has not written for
``nudge_after`` while their partner has gets a "one-sided" nudge; when both
have been silent for ``quiet_pair``, both get a "quiet-pair" nudge. The
``nudges`` row's unique key (pair, participant, start of the silence) makes
each silence nudged once; a participant gets at most one nudge per
``nudge_interval`` (a nudge held back by that limit goes out later, once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notice, Notices
from relay.mail.addresses import SignedAddresses, pair_address
from relay.programme.silence import Silence, silences
from relay.store.models import Nudge, Pair, Participant

ONE_SIDED = "one-sided"
QUIET_PAIR = "quiet-pair"


@dataclass(frozen=True)
class Due:
    silence: Silence
    role: str
    reason: str
    since: datetime


def due_nudges(silence: Silence, config: Config, now: datetime) -> list[Due]:
    settings = config.programme
    found = []
    for role in ("mentor", "mentee"):
        since = silence.since(role)
        if silence.partner_wrote_since(role) and now - since >= settings.nudge_after:
            found.append(Due(silence, role, ONE_SIDED, since))
    if now - silence.pair_since >= settings.quiet_pair:
        found.extend(
            Due(silence, role, QUIET_PAIR, silence.pair_since) for role in ("mentor", "mentee")
        )
    return found


def send_nudges(
    session: Session,
    config: Config,
    notices: Notices,
    unsubscribe: SignedAddresses,
    now: datetime,
) -> int:
    programme = config.programme
    candidates = [
        due
        for silence in silences(session, now, programme.time_zone, programme.send_hour)
        for due in due_nudges(silence, config, now)
    ]
    if not candidates:
        return 0
    pair_ids = {due.silence.pair_id for due in candidates}
    done: set[tuple[int, int, datetime]] = {
        (pair_id, participant_id, since)
        for pair_id, participant_id, since in session.execute(
            select(Nudge.pair_id, Nudge.participant_id, Nudge.silence_since).where(
                Nudge.pair_id.in_(pair_ids)
            )
        )
    }
    recent = dict(
        session.execute(
            select(Nudge.participant_id, func.max(Nudge.sent_at)).group_by(Nudge.participant_id)
        ).all()
    )
    sent = 0
    for due in candidates:
        silence = due.silence
        participant_id = silence.mentor_id if due.role == "mentor" else silence.mentee_id
        if (silence.pair_id, participant_id, due.since) in done:
            continue
        last = recent.get(participant_id)
        if last is not None and now - last < programme.nudge_interval:
            continue
        participant = session.get(Participant, participant_id)
        pair = session.get(Pair, silence.pair_id)
        assert participant is not None and pair is not None
        if participant.reminders_off:
            continue
        partner = pair.partner_of(participant_id)
        address = pair_address(silence.token, config.relay.domain)
        session.add(
            Nudge(
                pair_id=silence.pair_id,
                participant_id=participant_id,
                reason=due.reason,
                silence_since=due.since,
                sent_at=now,
            )
        )
        notices.queue(
            session,
            Notice.NUDGE,
            participant,
            reply_to=address,
            reason=due.reason,
            partner_name=partner.display_name,
            pair_address=address,
        )
        done.add((silence.pair_id, participant_id, due.since))
        recent[participant_id] = now
        sent += 1
    return sent
