"""The programme scheduler at scale: one tick over 30,000 pairs of a 34-week cohort.

Each run builds a fresh database with a cohort of N pairs (bulk inserts, no
introductions) and then, in a child process (so its peak memory, max RSS read with
os.wait4, is the tick's own plus the interpreter's), times:

  - plain query: SELECT every pair's id, token and next_item_at (the baseline,
    same table, same process, same run);
  - due tick:    Scheduler.tick at week 1, 09:00: every pair's week-1 prompt to both
    participants (2N mails rendered, recorded and queued);
  - idle tick:   Scheduler.tick one minute later, nothing due (what the daemon does
    every minute);
  - silence pass: the hourly nudge check over every pair (no one is silent yet).

    python3 bench/programme_scale.py                       # 30,000 pairs, 3 runs
    python3 bench/programme_scale.py --pairs 3000 --runs 1
    python3 bench/programme_scale.py --database postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, select, text

from relay.config import load_config
from relay.delivery.notices import Notices
from relay.mail.addresses import new_token
from relay.programme import cohorts
from relay.programme.scheduler import make_scheduler
from relay.store import db
from relay.store.models import Pair, Participant, ParticipantAddress

START = date(2031, 1, 6)  # a Monday


def build(folder: Path, url: str, pairs: int) -> Path:
    config_path = folder / "relay.toml"
    config_path.write_text(f'[relay]\ndomain = "relay.example.org"\n\n[database]\nurl = "{url}"\n')
    config = load_config(config_path)
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    store = db.Store(config.database.url)
    db.upgrade(store)
    with store.session() as session:
        cohort = cohorts.create_cohort(session, config, "bench", START, 34, "")
        people, addresses, made = [], [], []
        first = datetime(START.year, START.month, START.day, tzinfo=UTC) - timedelta(days=1)
        for i in range(pairs):
            for offset, role in ((1, "mentor"), (2, "mentee")):
                pid = 2 * i + offset
                email = f"{role}{i}@people.example.org"
                people.append(
                    {
                        "id": pid,
                        "email": email,
                        "display_name": f"{role.title()} {i}",
                        "role": role,
                        "watched": False,
                    }
                )
                addresses.append({"participant_id": pid, "email": email})
            made.append(
                {
                    "token": new_token(),
                    "mentor_id": 2 * i + 1,
                    "mentee_id": 2 * i + 2,
                    "status": "active",
                    "watched": False,
                    "cohort_id": cohort.id,
                    "started_on": START,
                    "weeks": 34,
                    "next_item_at": first,
                }
            )
        session.execute(insert(Participant), people)
        session.execute(insert(ParticipantAddress), addresses)
        session.execute(insert(Pair), made)
    store.dispose()
    return config_path


def child(config_path: str) -> None:
    config = load_config(config_path)
    store = db.open_store(config.database.url)
    scheduler = make_scheduler(store, config, Notices(config), True)
    due_at = datetime(START.year, START.month, START.day, 9, tzinfo=UTC)
    figures: dict[str, float] = {}

    started = time.perf_counter()
    with store.read_session() as session:
        rows = session.execute(select(Pair.id, Pair.token, Pair.next_item_at)).all()
    figures["plain_query"] = time.perf_counter() - started
    figures["pairs"] = len(rows)

    started, cpu = time.perf_counter(), time.process_time()
    report = scheduler.tick(due_at)
    figures["due_tick"] = time.perf_counter() - started
    figures["due_tick_cpu"] = time.process_time() - cpu
    figures["sent"] = report.sent

    started = time.perf_counter()
    idle = scheduler.tick(due_at + timedelta(minutes=1))
    figures["idle_tick"] = time.perf_counter() - started
    assert idle.sent == 0

    started = time.perf_counter()
    scheduler.tick(due_at + timedelta(hours=2))
    figures["silence_pass"] = time.perf_counter() - started
    store.dispose()
    print(json.dumps(figures))


def run_once(pairs: int, url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config_path = build(folder, url or f"sqlite:///{folder / 'relay.db'}", pairs)
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(config_path)], stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise SystemExit(f"the child failed with status {status}")
        figures: dict[str, float] = json.loads(output)
        figures["max_rss_mb"] = usage.ru_maxrss / 1024
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child)
        return
    runs = [run_once(arguments.pairs, arguments.database) for _ in range(arguments.runs)]
    where = "PostgreSQL" if arguments.database else "SQLite"
    print(f"{arguments.pairs} pairs, 34-week cohort, {where}, {len(runs)} runs (median)")
    print(
        "| run | plain query s | due tick s | due tick CPU s | mails | ms/pair | due/plain | "
        "idle tick s | idle/plain | silence pass s | max RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for number, f in enumerate(runs, 1):
        print(
            f"| {number} | {f['plain_query']:.3f} | {f['due_tick']:.2f} | "
            f"{f['due_tick_cpu']:.2f} | {int(f['sent'])} | "
            f"{1000 * f['due_tick'] / f['pairs']:.3f} | {f['due_tick'] / f['plain_query']:.0f} | "
            f"{f['idle_tick']:.3f} | {f['idle_tick'] / f['plain_query']:.2f} | "
            f"{f['silence_pass']:.2f} | {f['max_rss_mb']:.0f} |"
        )
    due = statistics.median(f["due_tick"] for f in runs)
    idle = statistics.median(f["idle_tick"] for f in runs)
    rss = max(f["max_rss_mb"] for f in runs)
    cpu = statistics.median(f["due_tick_cpu"] for f in runs)
    print(f"median due tick CPU {cpu:.2f} s (the rest of the wall time is waiting: for the disk,")
    print("and on a shared machine for a core; `uptime` shows the load)")
    print(
        f"median due tick {due:.2f} s ({1000 * due / arguments.pairs:.3f} ms/pair; "
        f"target < 30 s), idle tick {idle:.3f} s (target < 1 s), peak {rss:.0f} MB "
        "(target < 1024 MB)"
    )


if __name__ == "__main__":
    main()
