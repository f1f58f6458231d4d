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
from sqlalchemy import event

from relay.store import counters, db
from relay.store.states import utcnow


@pytest.mark.sqlite
@pytest.mark.parametrize(("in_pair_up_to", "count_recent"), [(2, True), (2, False), (0, True)])
def test_a_senders_mail_is_counted_from_an_index_alone(
    store: db.Store, in_pair_up_to: int, count_recent: bool
):
    query = counters._counts_query(in_pair_up_to, count_recent)
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
