"""Held mail that waits too long: overdue holds.

Held mail never releases itself. Owns what happens instead: a message held
longer than [safeguarding] decide_within is overdue
(relay.safeguarding.overdue_held, which `relay held` and `relay status` read
too); the leads are told once per message (an OverdueAlert row per message
keeps "once" true across restarts and several processes). The message stays
held until a person decides.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Moderator, Notice, Notices
from relay.durations import format_duration
from relay.moderation.held import alert_item, held_messages
from relay.safeguarding.overdue_held import overdue_ids
from relay.store.plain import SqlAlchemyReader
from relay.store.safeguarding_models import OverdueAlert
from relay.store.states import utcnow


def alert_overdue(session: Session, config: Config, notices: Notices) -> int:
    """Tell the leads about held messages newly past decide_within; how many."""
    now = utcnow()
    reader = SqlAlchemyReader(session)
    overdue = overdue_ids(reader, config.safeguarding, now)
    if not overdue:
        return 0
    told = set(
        session.scalars(select(OverdueAlert.message_id).where(OverdueAlert.message_id.in_(overdue)))
    )
    new = [m for m in held_messages(reader) if m.id in overdue and m.id not in told]
    if not new:
        return 0
    for message in new:
        session.add(OverdueAlert(message_id=message.id, alerted_at=now))
    try:
        session.flush()  # another process told them first: it wins, we stay quiet
    except IntegrityError:
        session.rollback()
        return 0
    listed = [alert_item(message, config.relay.domain, now) for message in new]
    within = format_duration(config.safeguarding.decide_within, exact=True)
    for lead in config.safeguarding.leads:
        notices.queue(
            session,
            Notice.OVERDUE_ALERT,
            Moderator("Safeguarding lead", lead),
            overdue=listed,
            decide_within=within,
        )
    return len(new)
