"""[rules.rate]: a sender's mail beyond per_hour in an hour is held, through the running relay.

The count behind the rule stops at the limit (relay.store.counters), so that a
flood from one sender costs each message a bounded count; what a moderator
sees is every message past the limit held, however far past it the flood
goes, and the mail before it forwarded.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from relay.store.models import Message
from relay.store.states import MessageStatus
from tests.conftest import Sink, mail, wait_for

PER_HOUR = 3
FLOOD = 3 * PER_HOUR


def test_every_message_past_the_limit_is_held_and_those_before_it_forwarded(configured, sink: Sink):
    relay, pair, store = configured(
        rules=f'disable = ["new_pair"]\n\n[rules.rate]\nper_hour = {PER_HOUR}'
    )
    for number in range(1, FLOOD + 1):
        relay.send(mail(pair.mentor, pair.address, f"Note {number}"), pair.mentor, pair.address)

    def stored() -> list[tuple[str, MessageStatus, str]]:
        with store.read_session() as session:
            rows = session.execute(select(Message.subject, Message.status, Message.hits))
            return [(subject, status, hits) for subject, status, hits in rows]

    wait_for(lambda: len(stored()) == FLOOD, 10, "the flood stored")
    by_subject = {subject: (status, json.loads(hits)) for subject, status, hits in stored()}
    for number in range(1, PER_HOUR + 1):
        assert by_subject[f"Note {number}"] == (MessageStatus.QUEUED, [])
    for number in range(PER_HOUR + 1, FLOOD + 1):
        status, hits = by_subject[f"Note {number}"]
        assert status is MessageStatus.HELD
        assert [(hit["rule"], hit["reason"]) for hit in hits] == [
            ("rate", f"more than {PER_HOUR} messages in the last hour (limit {PER_HOUR})")
        ]
    # The mentee got the first PER_HOUR and nothing of what was held.
    wait_for(
        lambda: (
            len([r for r in sink.to(pair.mentee) if "Note" in r.message["Subject"]]) >= PER_HOUR
        ),
        10,
        "the forwards",
    )
    forwarded = sorted(
        r.message["Subject"] for r in sink.to(pair.mentee) if "Note" in r.message["Subject"]
    )
    assert forwarded == [f"Note {number}" for number in range(1, PER_HOUR + 1)]
