"""The delivery outcomes' UPDATE on PostgreSQL: psycopg's executemany against one statement.

One UPDATE per row in psycopg's pipelined executemany (a Bind, an Execute and a
result read in Python per row) against relay.store.direct's one UPDATE ... FROM
unnest(...) per batch, and, given --values-direct (a direct.py that builds
UPDATE ... FROM (VALUES ...), e.g. commit 5e68a33's), that form too. Each batch
runs in a transaction that is rolled back, the ways in turn; prints this
process's CPU (the group writer's share) and the wall time per row.

    python3 bench/outcome_write.py postgresql+psycopg://USER:PW@127.0.0.1/DB --batch 16
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from relay.delivery.worker import _MARK_DELIVERED
from relay.store import db
from relay.store.direct import Direct, _run
from relay.store.states import utcnow

DIRECT = Direct(_MARK_DELIVERED, ["row_id", "attempt", "claimer", "now"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a postgresql+psycopg:// URL; its outbox is emptied")
    parser.add_argument("--batch", type=int, default=16, help="rows a batch (default 16)")
    parser.add_argument("--rounds", type=int, default=300, help="batches each way")
    parser.add_argument("--values-direct", help="a direct.py with the VALUES form")
    arguments = parser.parse_args()
    store = db.Store(arguments.url)
    db.upgrade(store)
    ids = _claimed_rows(store)
    ways: dict[str, Callable[[Connection, list[dict[str, Any]]], None]] = {
        "executemany": _one_per_row,
        "unnest": DIRECT.executemany,
    }
    if arguments.values_direct:
        ways["VALUES"] = _values_form(arguments.values_direct)
    totals = {name: [0.0, 0.0] for name in ways}
    batch = arguments.batch
    with store.engine.connect() as connection:
        for number in range(arguments.rounds):
            for name, way in ways.items():
                rows = [
                    {"row_id": ids[(number * batch + n) % len(ids)], "attempt": 1}
                    | {"claimer": "me", "now": utcnow()}
                    for n in range(batch)
                ]
                transaction = connection.begin()
                cpu, wall = time.process_time(), time.perf_counter()
                way(connection, rows)
                totals[name][0] += time.process_time() - cpu
                totals[name][1] += time.perf_counter() - wall
                transaction.rollback()
    store.dispose()
    count = arguments.rounds * batch
    for name, (cpu, wall) in totals.items():
        print(
            f"{batch} rows a batch, {name:12}: writer CPU {cpu / count * 1e6:6.1f} us/row,"
            f" wall {wall / count * 1e6:6.1f} us/row"
        )


def _claimed_rows(store: db.Store) -> list[int]:
    with store.write_connection() as connection:
        connection.execute(text("DELETE FROM outbox"))
        connection.execute(
            text(
                "INSERT INTO outbox (kind, recipient, content, status, attempts,"
                " next_attempt_at, claimed_by, created_at) SELECT 'forward', 'x@example.org',"
                " 'x', 'sending', 1, now(), 'me', now() FROM generate_series(1, 5000)"
            )
        )
        return [row[0] for row in connection.execute(text("SELECT id FROM outbox ORDER BY id"))]


def _one_per_row(connection: Connection, rows: list[dict[str, Any]]) -> None:
    form = DIRECT._form(connection.dialect, many=True)
    _run(connection, form.sql, [form.arguments(row) for row in rows], lambda _c: None, many=True)


def _values_form(path: str) -> Callable[[Connection, list[dict[str, Any]]], None]:
    spec = importlib.util.spec_from_file_location("values_direct", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["values_direct"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)

    def write(connection: Connection, rows: list[dict[str, Any]]) -> None:
        form = DIRECT._form(connection.dialect, many=True)
        sql, before, each, after = module._update_rows_together(
            form.sql, len(rows), form.row_columns
        )
        named = [form.arguments(row) for row in rows]
        flat = [named[0][name] for name in before]
        flat += [row[name] for row in named for name in each]
        flat += [named[0][name] for name in after]
        _run(connection, sql, flat, lambda _c: None)

    return write


if __name__ == "__main__":
    main()
