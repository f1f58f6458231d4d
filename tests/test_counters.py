"""The rules' counters read only an index, whatever size the counted mail has.

On SQLite a message's columns after ``raw`` sit behind the whole message, so a
count that read one of them (main's first version read ``hits`` to leave out
unverified mail) cost a read of every counted message's body: at 50 KB a
sender's every message got dearer with each one before it. The counts must be
answered from a covering index.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import event, select

from relay.config import Config
from relay.store import counters, db
from relay.store.models import Message, Pair
from relay.store.states import MessageStatus, utcnow
from tests.conftest import make_pair


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("in_pair_up_to", "recent_up_to"),
    [(2, 20), (2, 0), (0, 20), (0, counters.STOP_AT_MOST + 1)],
)
def test_a_senders_mail_is_counted_from_an_index_alone(
    store: db.Store, in_pair_up_to: int, recent_up_to: int
):
    query = counters._counts_query(in_pair_up_to, recent_up_to)
    parameters = {"pair_id": 1, "sender_id": 1, "since": utcnow() - timedelta(hours=1)}

    def explain(_c: object, _cur: object, statement: str, params: object, *_: object) -> object:
        return f"EXPLAIN QUERY PLAN {statement}", params

    event.listen(store.engine, "before_cursor_execute", explain, retval=True)
    try:
        with store.read_connection() as connection:
            plan = connection.execute(query, parameters).all()
    finally:
        event.remove(store.engine, "before_cursor_execute", explain)
    details = [str(row[-1]) for row in plan]
    reads_messages = [each for each in details if "messages" in each]
    assert reads_messages, details
    assert all("COVERING INDEX" in each for each in reads_messages), details


def test_the_migration_marks_earlier_unverified_mail(store: db.Store, config: Config):
    """Mail stored before messages.unverified existed is marked from its rule hits."""
    make_pair(store, config)
    with store.session() as session:
        pair = session.scalars(select(Pair)).one()
        for hits in ('[{"rule": "authentication", "reason": "no DKIM"}]', "[]"):
            session.add(
                Message(
                    pair_id=pair.id,
                    sender_id=pair.mentor_id,
                    recipient_id=pair.mentee_id,
                    status=MessageStatus.HELD,
                    raw=b"x",
                    size=1,
                    relay_message_id=f"<{len(hits)}@relay.test>",
                    hits=hits,
                    source="smtp",
                )
            )
    alembic = db.alembic_config(store)
    command.downgrade(alembic, "0015")  # before the column
    command.upgrade(alembic, "head")
    with store.read_connection() as connection:
        marked = dict(connection.execute(select(Message.hits, Message.unverified)).all())
    assert marked == {'[{"rule": "authentication", "reason": "no DKIM"}]': True, "[]": False}
