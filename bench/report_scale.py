"""`relay report` at scale: 30,000 pairs and 2,000,000 messages.

Builds a database once (bulk inserts through the database driver: executemany
on SQLite, COPY on PostgreSQL; schema by the relay's own migrations) with
three 34-week cohorts, 30 weeks into the programme: pairs active, paused and
ended early, messages both ways with held, decided, waiting and rejected
ones (rule hits as the relay stores them), prompts and check-ins. Then, in
each run, interleaved:

  - plain query: SELECT count(*) FROM messages (the baseline: same table,
    same database, same run; timed in this process, a fresh connection);
  - `relay report --json` and `relay report --html FILE`, each a child
    process (wall time, CPU time and peak RSS from os.wait4: the whole
    command, with the interpreter's start-up; CPU and RSS include the
    report's own second process, which reads the reply times beside it).

    python3 bench/report_scale.py                                  # 30,000 / 2,000,000, 3 runs
    python3 bench/report_scale.py --pairs 3000 --messages 200000 --runs 1
    python3 bench/report_scale.py --database postgresql+psycopg://...

Message bodies are 200 bytes (the report never reads them; a real database's
are larger, which makes the count(*) baseline slower, not the report).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from relay.store import db

START = date(2031, 1, 6)  # a Monday: every cohort's week 1
UNTIL = START + timedelta(weeks=30)  # the report's --until
COHORTS = ("autumn", "spring", "summer")
RULES = ("contact", "links", "keywords", "new_pair")
REASONS = ("mentor-left", "mentee-left", "no-contact", "other")
CHUNK = 50_000


def at(day: date, hours: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


class Writer:
    """Rows into one table, in chunks, the fastest way each driver has."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    def value(self, item: Any) -> Any:
        if isinstance(item, datetime) and not self.postgres:
            return item.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return item

    def write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        count = 0
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(tuple(self.value(item) for item in row))
            if len(batch) >= CHUNK:
                count += self._flush(table, columns, batch)
                batch = []
        return count + self._flush(table, columns, batch)

    def _flush(self, table: str, columns: tuple[str, ...], batch: list[tuple[Any, ...]]) -> int:
        if not batch:
            return 0
        names = ", ".join(columns)
        if self.postgres:
            cursor = self.connection.connection.driver_connection.cursor()
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            self.connection.exec_driver_sql(
                f"INSERT INTO {table} ({names}) VALUES ({marks})", batch
            )
        return len(batch)


def messages(
    pairs: int, total: int, rng: random.Random, ended: dict[int, datetime]
) -> Iterator[tuple[Any, ...]]:
    """(message row, moderation action or None) per message, pair by pair, in time order."""
    per_pair = total // pairs
    span_hours = (UTC_UNTIL - at(START)).total_seconds() / 3600
    mean_gap = span_hours / (per_pair + 1)
    message_id = 0
    for pair in range(1, pairs + 1):
        count = per_pair + (1 if pair <= total % pairs else 0)
        mentor, mentee = 2 * pair - 1, 2 * pair
        sender = mentor
        when = at(START, rng.uniform(0, 48))
        stop = ended.get(pair, UTC_UNTIL)
        for _ in range(count):
            message_id += 1
            when = min(
                when + timedelta(hours=rng.expovariate(1 / mean_gap)), stop - timedelta(minutes=1)
            )
            if rng.random() < 0.7:
                sender = mentee if sender == mentor else mentor
            draw = rng.random()
            decided_at = None
            action = None
            hits = "[]"
            if draw < 0.035:
                rule = RULES[int(draw * 1000) % len(RULES)]
                hits = json.dumps([{"rule": rule, "reason": f"{rule} found", "spans": []}])
                if draw < 0.005:
                    status = "held"
                else:
                    decided_at = when + timedelta(hours=rng.expovariate(1 / 10))
                    verdict = rng.choices(
                        ("approve", "approve-redacted", "reject", "discard"), (70, 10, 15, 5)
                    )[0]
                    status = {"approve": "queued", "approve-redacted": "queued"}.get(
                        verdict, verdict + "ed"
                    )
                    status = "discarded" if verdict == "discard" else status
                    action = (
                        message_id,
                        "moderator",
                        verdict.split("-")[0],
                        verdict.endswith("redacted"),
                        "",
                        decided_at,
                    )
            elif draw < 0.045:
                status = "rejected"
            else:
                status = "queued"
            recipient = mentee if sender == mentor else mentor
            yield (
                (
                    message_id,
                    pair,
                    sender,
                    recipient,
                    status,
                    b"x" * 200,
                    200,
                    "Hello",
                    None,
                    f"<m{message_id}@relay.example.org>",
                    hits,
                    "smtp",
                    when,
                    decided_at,
                    None,
                ),
                action,
            )


UTC_UNTIL = at(UNTIL)


def build(folder: Path, url: str, pairs: int, total: int) -> Path:
    config_path = folder / "relay.toml"
    config_path.write_text(
        '[relay]\ndomain = "relay.example.org"\nprogramme_name = "Bench"\n\n'
        f'[database]\nurl = "{url}"\n'
    )
    postgres = not url.startswith("sqlite")
    if postgres:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    store = db.Store(url)
    db.upgrade(store)
    store.dispose()
    rng = random.Random(16)
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        write = Writer(connection, postgres).write
        write(
            "cohorts",
            ("id", "name", "start_on", "weeks", "curriculum", "created_at"),
            ((i + 1, name, START, 34, "", at(START, -240)) for i, name in enumerate(COHORTS)),
        )
        people = [
            (2 * p - 1 + k, f"{role}{p}@{domain}.example.org", f"{role.title()} {p}", role)
            for p in range(1, pairs + 1)
            for k, (role, domain) in enumerate((("mentor", "mentors"), ("mentee", "school")))
        ]
        write(
            "participants",
            (
                "id",
                "email",
                "display_name",
                "role",
                "watched",
                "created_at",
                "minor",
                "time_zone",
                "reminders_off",
            ),
            (
                (pid, email, name, role, False, at(START, -300), False, "", False)
                for pid, email, name, role in people
            ),
        )
        write(
            "participant_addresses",
            ("id", "participant_id", "email"),
            ((pid, pid, email) for pid, email, _, _ in people),
        )
        ended: dict[int, datetime] = {}
        pair_rows = []
        for p in range(1, pairs + 1):
            draw = rng.random()
            status, reason, by, ended_at = "active", None, None, None
            if draw < 0.10:
                status, reason, by = "ended", rng.choice(REASONS), rng.choice(("priya", "sam"))
                ended_at = at(START, rng.uniform(24 * 10, 24 * 200))
                ended[p] = ended_at
            elif draw < 0.15:
                status = "paused"
            pair_rows.append(
                (
                    p,
                    f"tok{p:010d}",
                    2 * p - 1,
                    2 * p,
                    status,
                    False,
                    at(START, -rng.uniform(24, 240)),
                    ended_at,
                    None,
                    reason,
                    by,
                    1 + p % 3,
                    START,
                    34,
                    None,
                )
            )
        write(
            "pairs",
            (
                "id",
                "token",
                "mentor_id",
                "mentee_id",
                "status",
                "watched",
                "created_at",
                "ended_at",
                "pause_reason",
                "ended_reason",
                "ended_by",
                "cohort_id",
                "started_on",
                "weeks",
                "next_item_at",
            ),
            pair_rows,
        )
        actions: list[tuple[Any, ...]] = []

        def message_rows() -> Iterator[tuple[Any, ...]]:
            for row, action in messages(pairs, total, rng, ended):
                if action is not None:
                    actions.append(action)
                yield row

        write(
            "messages",
            (
                "id",
                "pair_id",
                "sender_id",
                "recipient_id",
                "status",
                "raw",
                "size",
                "subject",
                "original_message_id",
                "relay_message_id",
                "hits",
                "source",
                "received_at",
                "decided_at",
                "purged_at",
            ),
            message_rows(),
        )
        write(
            "moderation_actions",
            ("message_id", "moderator", "verdict", "redacted", "reason", "created_at"),
            actions,
        )
        prompt_weeks = range(1, 19)
        write(
            "scheduled_items",
            (
                "pair_id",
                "participant_id",
                "item_key",
                "week",
                "kind",
                "due_at",
                "status",
                "done_at",
            ),
            (
                (
                    p,
                    2 * p - 1 + k,
                    f"w{w:02d}-prompt",
                    w,
                    "prompt",
                    at(START, 24 * 7 * (w - 1) + 9),
                    "sent",
                    at(START, 24 * 7 * (w - 1) + 9),
                )
                for p in range(1, pairs + 1)
                if p not in ended
                for w in prompt_weeks
                for k in (0, 1)
            ),
        )
        checkin_id = iter(range(1, 10**9))
        write(
            "checkins",
            (
                "id",
                "pair_id",
                "participant_id",
                "item_key",
                "week",
                "sent_at",
                "answered_at",
                "score",
                "comment",
                "flagged",
            ),
            (
                (
                    next(checkin_id),
                    p,
                    2 * p - 1 + k,
                    f"w{w:02d}-checkin",
                    w,
                    at(START, 24 * 7 * (w - 1) + 9),
                    at(START, 24 * 7 * (w - 1) + 30),
                    rng.choice((1, 2, 3, 3, 4, 4, 4, 5, 5, None)),
                    None,
                    False,
                )
                for p in range(1, pairs + 1)
                if p not in ended
                for w in (4, 12, 20, 28)
                for k in (0, 1)
            ),
        )
    if postgres:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE"
            )
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(
        f"built in {time.perf_counter() - started:.0f} s: {pairs} pairs, {total} messages",
        flush=True,
    )
    return config_path


def count_messages(url: str) -> float:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            connection.exec_driver_sql("SELECT count(*) FROM messages").scalar()
            return time.perf_counter() - started
    finally:
        engine.dispose()


def run_report(config_path: Path, *options: str) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of `relay report` in a child process."""
    command = [
        sys.executable,
        "-m",
        "relay",
        "-c",
        str(config_path),
        "report",
        "--until",
        (UNTIL - timedelta(days=1)).isoformat(),
        *options,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(
            f"{' '.join(command)} failed: "
            f"{process.stderr.read().decode() if process.stderr else ''}"
        )
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--keep", default="", help="build in this folder, or reuse what is there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-scale-") as folder_name:
        folder = Path(args.keep or folder_name)
        folder.mkdir(parents=True, exist_ok=True)
        url = args.database or f"sqlite:///{folder / 'relay.db'}"
        config_path = folder / "relay.toml"
        if not (args.keep and config_path.exists()):
            config_path = build(folder, url, args.pairs, args.messages)
        names = ("count", "json", "json_cpu", "json_rss", "html", "html_cpu", "html_rss")
        figures: dict[str, list[float]] = {name: [] for name in names}
        for run in range(args.runs):
            figures["count"].append(count_messages(url))
            for kind, options in (
                ("json", ["--json"]),
                ("html", ["--html", str(folder / "r.html")]),
            ):
                wall, cpu, rss = run_report(config_path, *options)
                figures[kind].append(wall)
                figures[f"{kind}_cpu"].append(cpu)
                figures[f"{kind}_rss"].append(rss)
            print(
                f"run {run + 1}: count(*) {figures['count'][-1]:.3f} s, "
                + ", ".join(
                    f"--{kind} {figures[kind][-1]:.1f} s wall, "
                    f"{figures[kind + '_cpu'][-1]:.1f} s CPU, {figures[kind + '_rss'][-1]:.0f} MB"
                    for kind in ("json", "html")
                ),
                flush=True,
            )
        median = {name: statistics.median(values) for name, values in figures.items()}
        backend = "PostgreSQL" if args.database else "SQLite"
        print(
            f"\n{backend}, {args.pairs} pairs, {args.messages} messages, {args.runs} runs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"SELECT count(*) FROM messages: median {median['count']:.3f} s")
        for name in ("json", "html"):
            print(
                f"relay report --{name}: median {median[name]:.1f} s wall "
                f"({median[name] / median['count']:.0f}x the count), "
                f"{median[name + '_cpu']:.1f} s CPU, peak RSS {median[name + '_rss']:.0f} MB"
            )
        print(f"page size: {(folder / 'r.html').stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
