"""Recording deliveries: what was sent is recorded as delivered, even when the round stops.

The worker hands the sends that finish in one turn of the event loop to the
group writer together. A send whose attempt is cancelled in that turn (the
relay stopping) must still be recorded, or its row would stay "sending" and be
sent a second time when its lease ran out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.config import Config
from relay.delivery.notices import Notices
from relay.delivery.transports import MaildirTransport
from relay.delivery.worker import DeliveryWorker
from relay.store import db
from relay.store.models import OutboxEntry
from relay.store.states import DeliveryStatus
from tests.conftest import make_pair


class StopAfterLastSend(MaildirTransport):
    """A real Maildir transport that cancels the delivery round right after its last send.

    The cancel is queued before the attempt's next turn, so it lands while the
    attempt waits for the sends finishing in the same turn.
    """

    def __init__(self, folder: Path, sends: int) -> None:
        super().__init__(folder, "relay.test")
        self.left = sends
        self.round: asyncio.Task[int] | None = None

    async def send(self, envelope_from: str, recipient: str, content: bytes, key: str = "") -> None:
        await super().send(envelope_from, recipient, content, key)
        self.left -= 1
        if self.left == 0 and self.round is not None:
            asyncio.get_running_loop().call_soon(self.round.cancel)


def _statuses(store: db.Store) -> list[DeliveryStatus]:
    with store.read_session() as session:
        return list(session.scalars(select(OutboxEntry.status).order_by(OutboxEntry.id)))


def test_a_send_cancelled_before_it_is_recorded_is_recorded_all_the_same(
    store: db.Store, config: Config, tmp_path: Path
) -> None:
    make_pair(store, config)  # queues the two introductions
    assert _statuses(store) == [DeliveryStatus.QUEUED, DeliveryStatus.QUEUED]
    transport = StopAfterLastSend(tmp_path / "maildirs", sends=2)
    worker = DeliveryWorker(store, config, transport, Notices(config))

    async def stopped_round() -> None:
        transport.round = asyncio.create_task(worker.run_once())
        with pytest.raises(asyncio.CancelledError):
            await transport.round

    try:
        asyncio.run(stopped_round())
    finally:
        worker.writer.close()
    assert transport.left == 0  # both were sent ...
    assert _statuses(store) == [DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED]  # ... and kept
    delivered = list((tmp_path / "maildirs").glob("*/new/*"))
    assert len(delivered) == 2
