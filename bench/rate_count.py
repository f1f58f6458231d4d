"""The rate rule's count under a flood from one sender: stopped at the limit, or not.

intake reads, for every message, how many the sender wrote in the last hour
(relay.store.counters.sender_counts). This stores a flood of N messages from
one sender and times that read for the next message two ways, in turn, on the
same database: stopped at [rules.rate] per_hour (the default 20: how the relay
reads it now) and unbounded (how it read it before: a limit no flood reaches).
The figure is their ratio; the directory version read (one row) is printed
beside them as the floor of any read.

    python3 bench/rate_count.py                       # a SQLite file in a temp folder
    python3 bench/rate_count.py --database postgresql+psycopg://USER:PW@127.0.0.1/DB
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, insert, text

from relay.config import load_config
from relay.delivery.notices import Notices
from relay.store import db, registry
from relay.store.counters import sender_counts
from relay.store.directory import current_version
from relay.store.models import Message
from relay.store.states import MessageStatus, Role, utcnow

UNBOUNDED = 1_000_000_000  # what the count was: no flood reaches it
MENTOR, MENTEE = "mentor@mentors.example.org", "mentee@school.example.net"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a postgresql+psycopg:// URL (emptied); else SQLite")
    parser.add_argument(
        "--floods", default="20,200,2000,20000", help="flood sizes, comma-separated"
    )
    parser.add_argument("--per-hour", type=int, default=20, help="[rules.rate] per_hour (20)")
    parser.add_argument("--reads", type=int, default=300, help="reads each way per flood size")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-rate-count-") as folder:
        url = arguments.database or f"sqlite:///{Path(folder) / 'relay.db'}"
        store = _fresh_store(Path(folder), url)
        people = _pair(store, Path(folder), url)
        pair_id, sender_id, _ = people
        stored = 0
        print(f"database: {store.engine.dialect.name}; per_hour {arguments.per_hour}")
        print("| flood | unbounded us | stopped at the limit us | unbounded/stopped | one row us |")
        print("|---|---|---|---|---|")
        for flood in (int(each) for each in arguments.floods.split(",")):
            _store_flood(store, people, stored, flood, arguments.per_hour)
            stored = flood
            since = utcnow() - timedelta(hours=1)

            ways: dict[str, Callable[[Connection], object]] = {
                "unbounded": _count(pair_id, sender_id, since, UNBOUNDED),
                "stopped": _count(pair_id, sender_id, since, arguments.per_hour),
                "floor": current_version,
            }
            times = _interleaved(store, ways, arguments.reads)
            unbounded, stopped, floor = (statistics.median(times[name]) for name in ways)
            print(
                f"| {flood:,} | {unbounded * 1e6:.1f} | {stopped * 1e6:.1f} | "
                f"{unbounded / stopped:.1f} | {floor * 1e6:.1f} |",
                flush=True,
            )
        store.dispose()


def _count(
    pair_id: int, sender_id: int, since: datetime, up_to: int
) -> Callable[[Connection], object]:
    return lambda c: sender_counts(c, pair_id, sender_id, since, 0, up_to)


def _interleaved(
    store: db.Store, ways: dict[str, Callable[[Connection], object]], reads: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    with store.held_read() as connection:
        for _ in range(reads):
            for name, way in ways.items():
                started = time.perf_counter()
                way(connection)
                times[name].append(time.perf_counter() - started)
    return times


def _fresh_store(folder: Path, url: str) -> db.Store:
    store = db.Store(url)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(store)
    return store


def _pair(store: db.Store, folder: Path, url: str) -> tuple[int, int, int]:
    config_path = folder / "relay.toml"
    config_path.write_text(
        '[relay]\ndomain = "relay.example.org"\nprogramme_name = "Bench"\n\n'
        f'[database]\nurl = "{url}"\n'
    )
    config = load_config(config_path)
    with store.session() as session:
        mentor = registry.add_participant(session, MENTOR, "Mentor", Role.MENTOR)
        mentee = registry.add_participant(session, MENTEE, "Mentee", Role.MENTEE)
        created = registry.create_pair(
            session, Notices(config), config.relay.domain, MENTOR, MENTEE
        )
        session.flush()
        return created.pair.id, mentor.id, mentee.id


def _store_flood(
    store: db.Store, people: tuple[int, int, int], start: int, end: int, per_hour: int
) -> None:
    """Messages start..end-1 of the flood, a second apart; those past per_hour held."""
    pair_id, sender_id, recipient_id = people
    now = utcnow()
    rows = [
        {
            "pair_id": pair_id,
            "sender_id": sender_id,
            "recipient_id": recipient_id,
            "status": MessageStatus.HELD if number >= per_hour else MessageStatus.QUEUED,
            "raw": b"Subject: hi\r\n\r\nhello\r\n",
            "size": 21,
            "subject": "hi",
            "relay_message_id": f"<flood{number}@relay.example.org>",
            "hits": "[]",
            "source": "smtp",
            "received_at": now - timedelta(seconds=end - number),
            "unverified": False,
        }
        for number in range(start, end)
    ]
    if rows:
        with store.write_connection() as connection:
            connection.execute(insert(Message), rows)


if __name__ == "__main__":
    main()
