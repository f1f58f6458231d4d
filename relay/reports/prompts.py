"""Prompts answered and unanswered per pair, and each pair's last two prompts, in one query.

A prompt (one curriculum item, however many participants it went to) is
answered when either side of the pair wrote between the time it went out
and the next prompt (or the report's moment, for the last one); the same
notion as the focus list's "unanswered prompts". Prompts that went out in
the period count. The focus list also wants the times of each pair's last
two prompts (whenever sent): they come out of the same pass, one GROUP BY
per pair over one window over the prompts, which the index
ix_scheduled_items_sent gives item by item without reading the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.reports.period import Period
from relay.store.models import Message, ScheduledSend
from relay.store.states import ItemKind, SendStatus


@dataclass(frozen=True)
class PairPrompts:
    sent: int  # in the period
    answered: int  # of those
    last_two: list[datetime]  # whenever sent, newest first (the focus list's)


def pair_prompts(session: Session, period: Period, pair_ids: Subquery) -> dict[int, PairPrompts]:
    sent = (
        select(
            ScheduledSend.pair_id,
            func.min(ScheduledSend.done_at).label("sent_at"),
        )
        .where(
            ScheduledSend.kind == ItemKind.PROMPT,
            ScheduledSend.status == SendStatus.SENT,
            ScheduledSend.pair_id.in_(select(pair_ids.c.id)),
        )
        .group_by(ScheduledSend.pair_id, ScheduledSend.item_key)
        .subquery()
    )
    # One sort: the next prompt, the place from the first and the pair's number of prompts.
    ranked = select(
        sent.c.pair_id,
        sent.c.sent_at,
        func.lead(sent.c.sent_at)
        .over(partition_by=sent.c.pair_id, order_by=sent.c.sent_at)
        .label("next_at"),
        func.row_number().over(partition_by=sent.c.pair_id, order_by=sent.c.sent_at).label("place"),
        # The same window (order and all), so that all three come out of one sort.
        func.count()
        .over(partition_by=sent.c.pair_id, order_by=sent.c.sent_at, rows=(None, None))
        .label("prompts"),
    ).subquery()
    from_last = ranked.c.prompts - ranked.c.place  # 0: the newest
    in_period = (ranked.c.sent_at >= period.start) & (ranked.c.sent_at < period.until)
    # The next prompt before the moment; the moment when there is none.
    until_next = case(
        (ranked.c.next_at.is_not(None) & (ranked.c.next_at < period.until), ranked.c.next_at),
        else_=period.until,
    )
    answered = exists().where(
        and_(
            Message.pair_id == ranked.c.pair_id,
            Message.received_at >= ranked.c.sent_at,
            Message.received_at < until_next,
        )
    )
    statement = select(
        ranked.c.pair_id,
        func.sum(case((in_period, 1), else_=0)),
        func.sum(case((in_period & answered, 1), else_=0)),
        func.max(case((from_last == 0, ranked.c.sent_at))),
        func.max(case((from_last == 1, ranked.c.sent_at))),
    ).group_by(ranked.c.pair_id)
    found = {}
    for pair_id, count, answered_count, newest, second in session.execute(statement):
        found[pair_id] = PairPrompts(
            int(count or 0),
            int(answered_count or 0),
            [when for when in (newest, second) if when is not None],
        )
    return found
