"""The group writer's cost for one batch of intake's messages: CPU and wall per message.

Owns the figure for the writer thread's own part of a message, without the
SMTP sessions, the other threads or a closed loop of clients around it: set
against a commit's time inside the loaded daemon, it tells the writer's work
from its waiting (bench/RESULTS.md, issue 14, nineteenth pass). It is no
steadier from run to run than the end-to-end rate on this machine, so an A/B
still wants several runs in turn. It builds a relay on the given database
(one pair, the benchmark's rules), decides rounds x batch messages with
Intake.prepare() beforehand, then hands each round's batch to the group
writer's commit at once, in this thread, and reports the thread's CPU and the
wall time per message, median over rounds.

    python3 bench/writer_batch.py --database postgresql+psycopg://USER:PW@127.0.0.1/DB
    python3 bench/writer_batch.py --database URL --relay-code /tmp/before   (A/B: in turn)

A PostgreSQL database is emptied first; without --database a SQLite file in a
temporary folder is used (removed at the end).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import DOMAIN, MENTEE, MENTOR, empty_postgres, message_bytes, relay_toml


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="a postgresql+psycopg:// URL (emptied)")
    parser.add_argument("--batch", type=int, default=6, help="messages a commit (default 6)")
    parser.add_argument("--rounds", type=int, default=300, help="commits (default 300)")
    parser.add_argument("--size", type=int, default=1024, help="message bytes (default 1024)")
    parser.add_argument("--relay-code", help="import relay from this folder (an earlier commit)")
    arguments = parser.parse_args()
    if arguments.relay_code:
        sys.path.insert(0, arguments.relay_code)
    with tempfile.TemporaryDirectory(prefix="relay-writer-") as folder:
        return measure(arguments, Path(folder))


def measure(arguments: argparse.Namespace, folder: Path) -> int:
    """Build the relay in folder, commit the batches, print the medians."""
    from relay.config import load_config
    from relay.delivery.notices import Notices
    from relay.intake import Incoming, Intake
    from relay.intake_rows import Prepared
    from relay.store import db, registry
    from relay.store.group_commit import GroupWriter, _Item
    from relay.store.models import Role

    url = arguments.database or f"sqlite:///{folder / 'relay.db'}"
    if arguments.database:
        empty_postgres(url)
    path = folder / "relay.toml"
    path.write_text(relay_toml(url))
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    with store.session() as session:
        registry.add_participant(session, MENTOR, "Mentor", Role.MENTOR)
        registry.add_participant(session, MENTEE, "Mentee", Role.MENTEE)
        address = registry.create_pair(session, Notices(config), DOMAIN, MENTOR, MENTEE).address
    intake = Intake(store, config)
    writer = GroupWriter(store)
    prepared: list[Prepared] = []
    for number in range(arguments.rounds * arguments.batch + 1):
        raw = message_bytes(arguments.size, address, number)
        decided = intake.prepare(Incoming(raw, MENTOR, (address,), "smtp"))
        assert isinstance(decided, Prepared), decided
        prepared.append(decided)
    writer._commit([_Item(prepared.pop().write, Future())])  # connection, statements: warm
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    for start in range(0, len(prepared), arguments.batch):
        items = [_Item(each.write, Future()) for each in prepared[start : start + arguments.batch]]
        cpu, wall = time.thread_time(), time.perf_counter()
        writer._commit(items)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        for item in items:
            item.future.result()  # a failed commit is not a fast one
        cpu_ms.append(cpu * 1000 / len(items))
        wall_ms.append(wall * 1000 / len(items))
    writer._give_back()
    store.dispose()
    print(
        f"{store.engine.dialect.name}, {arguments.rounds} commits of {arguments.batch}: "
        f"writer CPU {statistics.median(cpu_ms):.3f} ms/msg, "
        f"wall {statistics.median(wall_ms):.3f} ms/msg (medians)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
