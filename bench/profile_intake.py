"""Where intake and delivery spend their time: cProfile of the hot path, in process.

Owns the profile quoted in bench/RESULTS.md. It builds a fresh SQLite relay
(one pair, the benchmark's rules: all run, new_pair and rate opened), then
calls Intake.accept() for N messages of the given size one after another
(what a DATA costs us, without the SMTP server), then lets the delivery
worker send them all to a Postfix smtp-sink, each phase under cProfile, and
prints the top functions by cumulative and by own time.

    python3 bench/profile_intake.py --size 1k --messages 1000
    python3 bench/profile_intake.py --size 50k --messages 300 --body prose --no-profile
    python3 bench/profile_intake.py --size 1k --messages 1000 --body reply --pairs 1000

With ``--pairs N`` the messages go round N pairs (each its own two participants),
as real traffic does, instead of all to one.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import quopri
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (
    DOMAIN,
    HOST,
    MENTOR,
    SMTP_SINK,
    free_port,
    message_bytes,
    pair_people,
    relay_toml,
    reply_bytes,
    wait_listening,
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1k")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--body",
        choices=("bench", "smtp-source", "prose", "reply"),
        default="bench",
        help="bench: throughput.py's lines of X (its latency runs); smtp-source: what "
        "smtp-source -l sends in its throughput runs (each line a digit, then X); prose: a "
        "letter with dates, numbers and curly quotes (what the rules spend their time on "
        'in real mail); reply: text and HTML quoting the partner under "On ... <pair address> '
        'wrote:" (what makes the relay scrub)',
    )
    parser.add_argument(
        "--pairs", type=int, default=1, help="spread the messages over this many pairs (default 1)"
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="time without cProfile (its overhead hides small gains): CPU ms/msg only",
    )
    parser.add_argument(
        "--prepare-rounds",
        type=int,
        default=0,
        help="only time Intake.prepare() (no commit, no delivery): this many rounds over "
        "the messages, thread CPU per message, median and min (steady under load)",
    )
    parser.add_argument(
        "--dump",
        default="",
        help="also write each phase's pstats to DUMP-intake.prof and DUMP-delivery.prof "
        "(to read callers with pstats)",
    )
    arguments = parser.parse_args()
    size = int(arguments.size.rstrip("kK")) * 1024
    from relay.config import load_config
    from relay.delivery.notices import Notices
    from relay.delivery.transports import make_transport
    from relay.delivery.worker import DeliveryWorker
    from relay.intake import Incoming, Intake
    from relay.store import db, registry
    from relay.store.models import Role

    folder = Path(tempfile.mkdtemp(prefix="relay-profile-"))
    sink_port = free_port()
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen([SMTP_SINK, *as_user, f"{HOST}:{sink_port}", "256"])
    try:
        wait_listening(sink_port, sink, "smtp-sink")
        path = folder / "relay.toml"
        path.write_text(
            relay_toml(
                f"sqlite:///{folder / 'relay.db'}",
                '[delivery]\ntransport = "smtp"\nbatch_size = 200\n\n'
                f'[smarthost]\nhost = "{HOST}"\nport = {sink_port}\ntls = "none"\n\n',
            )
        )
        config = load_config(path)
        store = db.open_store(config.database.url)
        pairs: list[tuple[str, str, str]] = []  # (pair address, mentor, mentee)
        with store.session() as session:
            for number in range(arguments.pairs):
                mentor, mentee = pair_people(number)
                registry.add_participant(session, mentor, "Mentor", Role.MENTOR)
                registry.add_participant(session, mentee, "Mentee", Role.MENTEE)
                new = registry.create_pair(session, Notices(config), DOMAIN, mentor, mentee)
                pairs.append((new.address, mentor, mentee))
        intake = Intake(store, config)
        make = {"bench": message_bytes, "smtp-source": source_bytes, "prose": prose_bytes}.get(
            arguments.body
        )
        incoming = []
        for n in range(arguments.messages):
            address, mentor, _ = pairs[n % len(pairs)]
            raw = (
                make(size, address, n)
                if make is not None
                else reply_bytes(size, address, n, mentor)
            )
            incoming.append(Incoming(raw, mentor, (address,), "smtp"))
        intake.accept(incoming[0])  # warm caches and imports outside the profile
        if arguments.prepare_rounds:
            per_message = []
            for _ in range(arguments.prepare_rounds):
                cpu_started = time.thread_time()
                for each in incoming[1:]:
                    intake.prepare(each)
                cpu = time.thread_time() - cpu_started
                per_message.append(cpu * 1000 / (arguments.messages - 1))
            per_message.sort()
            print(
                f"prepare(): thread CPU ms/msg median {per_message[len(per_message) // 2]:.3f}, "
                f"min {per_message[0]:.3f} ({arguments.prepare_rounds} rounds)"
            )
            return 0
        profile = cProfile.Profile()
        under = "without cProfile" if arguments.no_profile else "under cProfile"
        started = time.perf_counter()
        cpu_started = time.process_time()
        if not arguments.no_profile:
            profile.enable()
        for each in incoming[1:]:
            intake.accept(each)
        profile.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        print(
            f"intake: {(arguments.messages - 1) / seconds:.0f} msg/s, "
            f"{seconds * 1000 / (arguments.messages - 1):.2f} ms/msg, "
            f"CPU {cpu * 1000 / (arguments.messages - 1):.2f} ms/msg (all threads; {under})"
        )
        if not arguments.no_profile:
            show(profile, arguments.top)
            if arguments.dump:
                profile.dump_stats(f"{arguments.dump}-intake.prof")

        worker = DeliveryWorker(store, config, make_transport(config), Notices(config))
        profile = cProfile.Profile()

        async def drain() -> int:
            total = 0
            while sent := await worker.run_once():
                total += sent
            await worker.transport.close()
            return total

        started = time.perf_counter()
        cpu_started = time.process_time()
        if not arguments.no_profile:
            profile.enable()
        total = asyncio.run(drain())
        profile.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        print(
            f"delivery: {total} rows, {seconds * 1000 / max(total, 1):.2f} ms/row, "
            f"CPU {cpu * 1000 / max(total, 1):.2f} ms/row (all threads; {under}; "
            "the profile is the main thread only, database work runs in threads)"
        )
        if not arguments.no_profile:
            show(profile, arguments.top)
            if arguments.dump:
                profile.dump_stats(f"{arguments.dump}-delivery.prof")
        store.dispose()
    finally:
        sink.terminate()
        sink.wait()
    return 0


PROSE = (
    "Hi Sam, thanks for the notes from Tuesday \u2014 I read the chapter on budgeting and "
    "tried the exercise with my cousin; we spent 2 hours on it and I think it helped. "
    "Next week I have exams, so maybe we can talk on the 14th instead? The school said "
    "the results come out in August. Let me know what you think about the plan for "
    "year 12, and whether the \u2018personal statement\u2019 should mention the summer job.\n\n"
)


def prose_bytes(size: int, to: str, number: int) -> bytes:
    """About ``size`` bytes of a mentee's letter (UTF-8, quoted-printable: what clients send)."""
    body = (PROSE * (size // len(PROSE) + 1))[:size]
    return (
        f"From: <{MENTOR}>\r\nTo: <{to}>\r\nSubject: notes {number}\r\n"
        f"Message-Id: <prose.{os.getpid()}.{number}@bench.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + quopri.encodestring(body.encode()).replace(b"\n", b"\r\n")


def source_bytes(size: int, to: str, number: int) -> bytes:
    """Postfix smtp-source's body: lines of 78 characters, a digit (1, 2, ... 9, 0) then X."""
    lines = "".join(f"{n % 10}{'X' * 77}\r\n" for n in range(1, size // 80 + 1))
    return message_bytes(0, to, number).split(b"\r\n\r\n")[0] + b"\r\n\r\n" + lines.encode()


def show(profile: cProfile.Profile, top: int) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        text = out.getvalue()
        print(text[text.find("   ncalls") :])


if __name__ == "__main__":
    sys.exit(main())
