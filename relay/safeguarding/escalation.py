"""The `escalate` action: stronger than discard, because a lead must see it.

Owns what an escalating message does inside intake's commit: the message is
held (intake stores it so, and tells the sender nothing), its pair is paused
(so everything either side writes waits for a person), a concern is opened
(or the pair's live escalation concern grows) and every lead is alerted at
once, in the same commit as the message.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notices
from relay.rules.base import Hit
from relay.safeguarding.concerns import alert_leads, open_concern
from relay.store.models import Message
from relay.store.safeguarding_models import Concern, ConcernPair
from relay.store.states import LIVE_CONCERN_STATES, PairStatus

ESCALATION = "escalation"


def escalate(
    session: Session, config: Config, notices: Notices, stored: Message, hits: Sequence[Hit]
) -> Concern:
    """Pause the pair, open (or grow) its escalation concern, alert the leads."""
    pair = stored.pair
    if pair.status is PairStatus.ACTIVE:
        pair.status = PairStatus.PAUSED
        pair.pause_reason = ESCALATION
    reasons = [f"{hit.rule}: {hit.reason}" for hit in hits]
    concern = session.scalar(
        select(Concern)
        .join(ConcernPair, ConcernPair.concern_id == Concern.id)
        .where(
            ConcernPair.pair_id == pair.id,
            Concern.source == ESCALATION,
            Concern.status.in_(LIVE_CONCERN_STATES),
        )
        .order_by(Concern.id)
        .limit(1)
    )
    role = stored.sender.role.value
    if concern is None:
        concern = open_concern(
            session,
            source=ESCALATION,
            raised_by="the relay (rules)",
            summary=f"message {stored.id} from the {role}: " + "; ".join(reasons),
            pairs=[pair],
            messages=[stored],
        )
        headline = f"a message from the {role} escalated; the pair is paused"
    else:
        concern.messages.append(stored)
        headline = f"another message from the {role} escalated; the pair stays paused"
    alert_leads(session, config, notices, concern, headline, reasons, [stored.id])
    return concern
