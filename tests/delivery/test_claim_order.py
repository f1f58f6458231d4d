"""A claim takes exactly the rows the single SELECT it replaced would have taken.

The claim picks the due rows' ids in a subquery and reads the content of only
those it takes (relay.delivery.claims): the rows, their order and the limit
must be those of the former one-statement claim, whatever mix of states,
times and leases the outbox holds.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

from sqlalchemy import insert, select

from relay.config import Config
from relay.delivery import claims
from relay.delivery.notices import Notices
from relay.delivery.transports import make_transport
from relay.delivery.worker import DeliveryWorker
from relay.store import db
from relay.store.messages import OUTBOX
from relay.store.states import DeliveryStatus, OutboxKind, utcnow

_FORMER_CLAIM = (
    select(OUTBOX.c.id, OUTBOX.c.recipient, OUTBOX.c.content, OUTBOX.c.attempts)
    .where(claims._DUE_NOW)
    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
)


def test_the_claim_takes_the_oldest_due_rows_as_the_single_select_did(
    store: db.Store, config: Config
):
    now = utcnow()
    shuffle = random.Random(14)
    rows = []
    for number in range(120):
        status = shuffle.choice(list(DeliveryStatus))
        rows.append(
            {
                "kind": OutboxKind.FORWARD,
                "recipient": f"r{number}@example.org",
                "content": b"x" * shuffle.randrange(10, 3000),
                "status": status,
                "attempts": shuffle.randrange(3),
                # Ties on purpose: the order then falls to the id.
                "next_attempt_at": now + timedelta(minutes=shuffle.randrange(-5, 3), seconds=30),
                "lease_until": now + timedelta(minutes=shuffle.randrange(-5, 5), seconds=30)
                if status is DeliveryStatus.SENDING
                else None,
                "claimed_by": "other:1" if status is DeliveryStatus.SENDING else None,
                "created_at": now,
            }
        )
    with store.write_connection() as connection:
        connection.execute(insert(OUTBOX), rows)
        connection.execute(OUTBOX.update().values(next_attempt_at=now - timedelta(days=1)))
        for number, row in enumerate(rows, start=1):  # the mix above, after the intros
            connection.execute(
                OUTBOX.update()
                .where(OUTBOX.c.recipient == row["recipient"])
                .values(next_attempt_at=row["next_attempt_at"], id=10_000 + number * 7 % 120)
            )
    with store.read_connection() as connection:
        expected = connection.execute(_FORMER_CLAIM, {"now": now}).all()
    assert 10 < len(expected) < 120  # some due, some not

    settings = dataclasses.replace(config.delivery, batch_size=7)
    worker = DeliveryWorker(store, config, make_transport(config), Notices(config), name="w:1")
    worker.settings = settings
    taken = []
    with store.write_connection() as connection:
        while batch := [
            item
            for item in worker.claim_on(connection)
            if item.lease_until > now  # (claimed now; never again in this loop)
        ]:
            assert len(batch) <= 7
            taken.extend(batch)
    assert [(item.outbox_id, item.recipient, item.content) for item in taken] == [
        (row.id, row.recipient, row.content) for row in expected
    ]
    assert [item.attempts for item in taken] == [row.attempts + 1 for row in expected]
