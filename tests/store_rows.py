"""Rows the store tests write by hand: one pair, and messages as intake inserts them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from relay.config import Config
from relay.store import db
from relay.store.models import Pair
from relay.store.states import MessageStatus, utcnow
from tests.conftest import make_pair


def stored_pair(store: db.Store, config: Config) -> Pair:
    make_pair(store, config)
    with store.session() as session:
        return session.scalars(select(Pair)).one()


def message_row(pair: Pair, number: int) -> dict[str, Any]:
    return {
        "pair_id": pair.id,
        "sender_id": pair.mentor_id,
        "recipient_id": pair.mentee_id,
        "status": MessageStatus.QUEUED,
        "raw": b"Subject: hi\r\n\r\nhello\r\n",
        "size": 21,
        "subject": "hi",
        "original_message_id": f"<{number}@example.org>",
        "relay_message_id": f"<relay{number}@relay.test>",
        "hits": "[]",
        "source": "smtp",
        "received_at": utcnow(),
        "unverified": False,
    }
