"""Prompts answered and unanswered, per pair, in SQL.

A prompt (one curriculum item, however many participants it went to) is
answered when either side of the pair wrote between the time it went out
and the next prompt (or the report's moment, for the last one); the same
notion as the focus list's "unanswered prompts". Prompts that went out in
the period count.
"""

from __future__ import annotations

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.store.models import Message, ScheduledSend
from relay.store.states import ItemKind, SendStatus


def prompt_counts(period: Period, pair_ids: Subquery) -> Subquery:
    """Columns: pair_id, prompts (sent in the period), answered."""
    sent = (
        select(
            ScheduledSend.pair_id,
            func.min(ScheduledSend.done_at).label("sent_at"),
        )
        .where(
            ScheduledSend.pair_id.in_(select(pair_ids.c.id)),
            ScheduledSend.kind == ItemKind.PROMPT,
            ScheduledSend.status == SendStatus.SENT,
            ScheduledSend.done_at < period.until,
        )
        .group_by(ScheduledSend.pair_id, ScheduledSend.item_key)
        .subquery()
    )
    with_next = select(
        sent.c.pair_id,
        sent.c.sent_at,
        func.coalesce(
            func.lead(sent.c.sent_at).over(partition_by=sent.c.pair_id, order_by=sent.c.sent_at),
            period.until,
        ).label("next_at"),
    ).subquery()
    answered = exists().where(
        and_(
            Message.pair_id == with_next.c.pair_id,
            Message.received_at >= with_next.c.sent_at,
            Message.received_at < with_next.c.next_at,
        )
    )
    return (
        select(
            with_next.c.pair_id,
            func.count().label("prompts"),
            func.sum(case((answered, 1), else_=0)).label("answered"),
        )
        .where(with_next.c.sent_at >= period.start)
        .group_by(with_next.c.pair_id)
        .subquery()
    )
