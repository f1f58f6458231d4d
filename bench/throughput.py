"""Throughput, latency and server CPU of `relay serve` against a bare aiosmtpd server.

Owns the relay's throughput benchmark (see /work/shared/BENCHMARKING.md). For each
configuration (message size x concurrent connections) and each run, it starts two fresh
servers one after the other, interleaved (bare, relay, bare, relay, ...):

- bare: a subprocess running an asyncio loop with ``loop.create_server`` on aiosmtpd's
  ``SMTP`` class, whose handler only answers ``250 OK`` (this file, ``--bare-server``;
  the stock asyncio loop the targets name, or uvloop with ``--bare-loop uvloop``, the loop
  `relay serve` runs on by default);
- relay: ``relay -c CONFIG serve`` with a fresh temp relay.toml and a fresh database
  (a SQLite file in the run's temp folder, or the emptied PostgreSQL database given by
  ``--database``), one mentor-mentee pair, and ``[delivery] transport = "smtp"`` to a
  Postfix ``smtp-sink`` on loopback. For the relay a message is done when it has been
  delivered to the sink (its forward row in the outbox is ``delivered``), not when the
  250 came back.

The load client is Postfix's ``smtp-source`` (``-d``: sessions reused). Latency is a
separate measurement per size: one connection, stdlib smtplib, the time from sending
DATA's final dot to reading the reply. Server CPU is utime+stime of the server process
from /proc/PID/stat before and after, per message (on PostgreSQL the CPU of all
``postgres`` processes is reported separately). Every figure is printed as the median of
the runs, next to the median of the per-run ratios relay/bare.

    python3 bench/throughput.py                        # 2,000 messages, 1 KB and 50 KB, 1 and 16
    python3 bench/throughput.py --quick                # smoke run
    python3 bench/throughput.py --database postgresql+psycopg://relay:relay@127.0.0.1/relay_bench
    python3 bench/throughput.py --more --postgres postgresql+psycopg://...   # every row, one run
    python3 bench/throughput.py --sizes 1k --connections 16 --pairs 1000   # replies, 1,000 pairs

With ``--pairs N`` (or ``--reply`` for one pair) every message is a reply quoting the pair
address in text and HTML (what makes the relay scrub), sent by the pair's mentor, and
message j goes to pair j mod N: one smtp-source run per message (see ``run_spread``).

All traffic stays on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DOMAIN = "relay.bench"
MENTOR = "mentor@bench.example"
MENTEE = "mentee@bench.example"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 30.0  # seconds for a server to start listening
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05  # seconds between outbox polls while draining
RATE_PER_HOUR = 1_000_000_000  # [rules.rate] per_hour for the benchmark pair
# All load comes from one loopback address, and the idle row holds 500 sessions: the
# connection limits ([smtp] max_connections, _per_ip) are lifted so that the figures
# measure the relay's work, not its refusals (a relay without limits, as before them).
SMTP_LIMITS = "max_connections = 2000\nmax_connections_per_ip = 2000\n"


# -- small helpers --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not listening on {HOST}:{port} after {START_TIMEOUT}s")


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" closing comm, fields[0] is state (field 3); utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of a process so far.

    Summed over /proc/PID/task/*/status: a thread that ended during the run takes its
    count with it (the relay's threads live as long as the process).
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split(":", 1)[1])
    return total


def postgres_cpu_seconds() -> float:
    """utime+stime of every process named postgres (the database's share of the work)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
    return total


def child_environment(python_path: Path | None = None) -> dict[str, str]:
    # RELAY_<SECTION>_<KEY> would override the temp relay.toml (e.g. a developer's DB URL).
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    if python_path is not None:
        environment["PYTHONPATH"] = str(python_path)
    return environment


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running(
    command: Sequence[str],
    port: int,
    what: str,
    log_path: Path,
    python_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server subprocess, wait until it listens, always stop it on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(python_path),
            # `python -m relay` puts the working directory first on sys.path: run it in
            # the snapshot, or a checkout in the working directory would win.
            cwd=python_path,
        )
        try:
            wait_listening(port, process, what)
            yield process
        finally:
            stop_process(process)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- the bare server (run in a child process) ------------------------------------


def serve_bare(port: int, loop_kind: str = "asyncio") -> None:
    """An aiosmtpd server whose handler only answers 250 OK; runs until SIGTERM.

    loop_kind "uvloop": on the loop `relay serve` runs on by default (--bare-loop).
    """
    import signal

    from aiosmtpd.smtp import SMTP

    class OkHandler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = OkHandler()
        server = await loop.create_server(
            # The same options the relay gives aiosmtpd (relay/sources/smtp.py).
            lambda: SMTP(
                handler,
                hostname="bare.bench",
                data_size_limit=10 * 1024 * 1024,
                enable_SMTPUTF8=True,
                ident="bare",
            ),
            host=HOST,
            port=port,
        )
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()

    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# -- what one server measurement yields --------------------------------------------


@dataclass
class Throughput:
    messages: int
    seconds: float  # until done: accepted (bare) or delivered to the sink (relay)
    accept_seconds: float  # until smtp-source exited
    server_cpu: float  # seconds
    database_cpu: float | None = None  # seconds, PostgreSQL only
    complete: bool = True  # False when draining timed out
    switches: int = 0  # context switches of the server's threads during the run

    @property
    def switches_per_message(self) -> float:
        return self.switches / self.messages

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def accept_rate(self) -> float:
        return self.messages / self.accept_seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.server_cpu / self.messages

    @property
    def database_cpu_ms(self) -> float | None:
        return None if self.database_cpu is None else 1000 * self.database_cpu / self.messages


@dataclass
class Latency:
    samples: list[float]  # seconds, final dot -> reply

    @property
    def p50_ms(self) -> float:
        return 1000 * percentile(self.samples, 0.50)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.samples, 0.99)

    @property
    def first_ms(self) -> float:
        """The first message a fresh server answered: what a cold start costs."""
        return 1000 * self.samples[0]


# -- the load ------------------------------------------------------------------------


def run_smtp_source(port: int, messages: int, size: int, connections: int, to: str) -> float:
    """Send with Postfix's smtp-source; returns the wall time. Raises if it fails."""
    command = [
        SMTP_SOURCE,
        "-d",
        "-s", str(connections),
        "-m", str(messages),
        "-l", str(size),
        "-f", MENTOR,
        "-t", to,
        f"{HOST}:{port}",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, timeout=max(120, messages), check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or result.stderr.strip():
        raise RuntimeError(
            f"smtp-source failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
        )
    return elapsed


def run_asyncio_source(port: int, messages: int, size: int, connections: int, to: str) -> float:
    """Fallback load client when smtp-source is missing (it costs as much CPU as a server)."""
    import aiosmtplib

    body = message_bytes(size, to, 0)

    async def session(count: int) -> None:
        client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=60)
        await client.connect()
        for _ in range(count):
            await client.sendmail(MENTOR, [to], body)
        await client.quit()

    async def main() -> None:
        shares = [
            messages // connections + (i < messages % connections) for i in range(connections)
        ]
        await asyncio.gather(*(session(share) for share in shares if share))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


Target = tuple[str, str]  # (recipient, envelope sender)


def run_spread(
    port: int, messages: int, size: int, connections: int, targets: Sequence[Target], folder: Path
) -> float:
    """Send replies (reply_bytes) spread over many recipients; returns the wall time.

    smtp-source sends to one recipient per run (-r only prefixes numbers to it), so each
    message is one smtp-source run (-m 1 -F file) and ``connections`` lanes run them side
    by side: message j goes to target j mod len(targets), and a pair's next message comes
    only after every other pair's, as in traffic spread over many pairs. Every message is
    its own SMTP session, for bare and relay alike.
    """
    if not Path(SMTP_SOURCE).exists():
        raise RuntimeError(f"{SMTP_SOURCE} is missing: --pairs and --reply need it")
    files = []
    for number, (to, sender) in enumerate(targets):
        path = folder / f"reply-{number}.eml"
        # smtp-source -F appends CRLF to each line: the file has bare LF.
        path.write_bytes(reply_bytes(size, to, number, sender).replace(b"\r\n", b"\n"))
        files.append(path)
    failures: list[str] = []

    def lane(first: int) -> None:
        for number in range(first, messages, connections):
            to, sender = targets[number % len(targets)]
            command = [SMTP_SOURCE, "-s", "1", "-m", "1", "-f", sender, "-t", to]
            command += ["-F", str(files[number % len(targets)]), f"{HOST}:{port}"]
            result = subprocess.run(command, capture_output=True, timeout=120, check=False)
            if result.returncode != 0 or result.stderr.strip():
                failures.append(result.stderr.decode(errors="replace").strip())
                return

    lanes = [threading.Thread(target=lane, args=(first,)) for first in range(connections)]
    started = time.perf_counter()
    for each in lanes:
        each.start()
    for each in lanes:
        each.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"smtp-source failed: {failures[0]}")
    return elapsed


def message_bytes(size: int, to: str, number: int) -> bytes:
    """About `size` bytes of body under the headers smtp-source writes; CRLF, no dot lines."""
    headers = (
        f"From: <{MENTOR}>\r\nTo: <{to}>\r\nDate: {formatdate()}\r\n"
        f"Subject: bench {number}\r\n"
        f"Message-Id: <bench.{os.getpid()}.{number}@bench.example>\r\n\r\n"
    )
    line = "X" * 78 + "\r\n"
    lines = max(1, size // len(line))
    return headers.encode() + (line * lines).encode()


def relay_toml(url: str, sections: str = "") -> str:
    """The benchmark relay's relay.toml: its domain and database, the sections given, and
    the rules as every benchmark runs them."""
    return (
        f'[relay]\ndomain = "{DOMAIN}"\nprogramme_name = "Bench"\n'
        'postmaster = "op@ops.example"\n\n'
        f'[database]\nurl = "{url}"\n\n{sections}'
        # Every rule still runs; only the two that hold a flood from one new pair are
        # opened, or the benchmark measures the hold queue instead of forwarding.
        f"[rules.new_pair]\nmessages = 0\n\n[rules.rate]\nper_hour = {RATE_PER_HOUR}\n"
    )


def pair_people(number: int) -> tuple[str, str]:
    """The mentor's and the mentee's real addresses of pair ``number`` (1 pair: the classic two)."""
    if number == 0:
        return MENTOR, MENTEE
    return f"mentor.{number}@bench.example", f"mentee.{number}@school{number % 7}.example"


REPLY_LINE = "thanks, that helps; I will try the exercise again before we talk on Thursday"


def reply_bytes(size: int, to: str, number: int, sender: str = MENTOR) -> bytes:
    """About ``size`` bytes of a reply as clients send it: text and HTML, each quoting the
    partner's letter under "On ... <the pair address> wrote:" (the partner's letters come
    from the pair address). Any form of "@", or an HTML part, makes the relay scrub.
    """
    partner = to
    quoted = (f"> {REPLY_LINE}\r\n" * max(1, size // 2 // 80)).rstrip("\r\n")
    attribution = f"On Mon, 30 Nov 2026 at 09:12, Partner <{partner}> wrote:"
    text = f"Sounds good, see you then.\r\n\r\n{attribution}\r\n{quoted}\r\n"
    quote_html = "<br>\r\n".join([REPLY_LINE] * max(1, size // 2 // 90))
    html = (
        '<div dir="ltr">Sounds good, see you then.</div><br><div class="gmail_quote">'
        f'<div dir="ltr" class="gmail_attr">On Mon, 30 Nov 2026 at 09:12, Partner &lt;<a '
        f'href="mailto:{partner}">{partner}</a>&gt; wrote:<br></div>\r\n'
        f'<blockquote class="gmail_quote">{quote_html}</blockquote></div>\r\n'
    )
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nDate: {formatdate()}\r\n"
        f"Subject: Re: bench {number}\r\n"
        f"Message-Id: <reply.{os.getpid()}.{number}@bench.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        '--b1\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
        f"{text}\r\n"
        '--b1\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
        f"{html}\r\n--b1--\r\n"
    ).encode()


def measure_latency(port: int, messages: int, size: int, to: str) -> Latency:
    """One smtplib connection; the clock runs from sending the final dot to the reply.

    The client's own part is small: the same loop against bare aiosmtpd (its
    handler answers at once) measures ~0.1 ms at p50, client included.
    """
    samples: list[float] = []
    with smtplib.SMTP(HOST, port, timeout=60) as client:
        client.ehlo("bench.example")
        for number in range(messages):
            body = message_bytes(size, to, number)
            code, reply = client.mail(MENTOR)
            if code != 250:
                raise RuntimeError(f"MAIL refused: {code} {reply!r}")
            code, reply = client.rcpt(to)
            if code != 250:
                raise RuntimeError(f"RCPT refused: {code} {reply!r}")
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                raise RuntimeError(f"DATA refused: {code} {reply!r}")
            started = time.perf_counter()
            client.send(body + b"\r\n.\r\n")
            code, reply = client.getreply()
            samples.append(time.perf_counter() - started)
            if code != 250:
                raise RuntimeError(f"message refused: {code} {reply!r}")
    return Latency(samples)


# -- the servers ------------------------------------------------------------------------


@dataclass
class Options:
    messages: int
    latency_messages: int
    runs: int
    sizes: list[int]
    connections: list[int]
    database: str | None
    keep: bool
    send: Callable[[int, int, int, int, str], float]
    client_name: str
    relay_command: list[str] = field(default_factory=lambda: ["relay"])
    snapshot: Path | None = None  # PYTHONPATH for a frozen copy of relay/ and matching/
    profile: Path | None = None  # folder for py-spy profiles of the relay (--profile)
    pairs: int = 1  # --pairs: messages spread over this many pairs
    reply: bool = False  # --reply: replies quoting the pair address (--pairs implies it)
    bare_loop: str = "asyncio"  # --bare-loop: the event loop of the bare server

    @property
    def spread(self) -> bool:
        return self.pairs > 1 or self.reply


class Bare:
    name = "bare"

    def __init__(self, options: Options) -> None:
        self.options = options

    @contextlib.contextmanager
    def serve(self, folder: Path) -> Iterator[tuple[int, int, str]]:
        """Yields (port, server pid, the address to send to)."""
        port = free_port()
        command = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)]
        command += ["--bare-loop", self.options.bare_loop]
        with running(command, port, "bare aiosmtpd", folder / "bare.log") as process:
            yield port, process.pid, "anyone@bare.bench"

    def throughput(self, folder: Path, size: int, connections: int) -> Throughput:
        messages = self.options.messages
        with self.serve(folder) as (port, pid, to):
            targets = [
                (f"pair.{number}@bare.bench", pair_people(number)[0])
                for number in range(self.options.pairs)
            ]
            before, switched = cpu_seconds(pid), context_switches(pid)
            elapsed = (
                run_spread(port, messages, size, connections, targets, folder)
                if self.options.spread
                else self.options.send(port, messages, size, connections, to)
            )
            cpu = cpu_seconds(pid) - before
            switched = context_switches(pid) - switched
        return Throughput(messages, elapsed, elapsed, cpu, switches=switched)

    def latency(self, folder: Path, size: int) -> Latency:
        with self.serve(folder) as (port, _, to):
            return measure_latency(port, self.options.latency_messages, size, to)


MANY_PAIRS = """
import sys
sys.path.insert(0, sys.argv[3])
from throughput import DOMAIN, pair_people
from relay.config import load_config
from relay.delivery.notices import Notices
from relay.store import db, registry
from relay.store.models import Role
config = load_config(sys.argv[1])
store = db.open_store(config.database.url)
with store.session() as session:
    for number in range(int(sys.argv[2])):
        mentor, mentee = pair_people(number)
        registry.add_participant(session, mentor, "Mentor", Role.MENTOR)
        registry.add_participant(session, mentee, "Mentee", Role.MENTEE)
        pair = registry.create_pair(session, Notices(config), DOMAIN, mentor, mentee)
        print(pair.address, mentor)
store.dispose()
"""


class Relay:
    name = "relay"

    def __init__(self, options: Options) -> None:
        self.options = options
        self.targets: list[Target] = []  # (pair address, mentor) of the run's pairs

    def _relay(self, config: Path, *arguments: str) -> str:
        result = subprocess.run(
            [*self.options.relay_command, "-c", str(config), *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            env=child_environment(self.options.snapshot),
            cwd=self.options.snapshot,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"relay {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _database_url(self, folder: Path) -> str:
        if self.options.database:
            empty_postgres(self.options.database)
            return self.options.database
        return f"sqlite:///{folder / 'relay.db'}"

    def _prepare(self, folder: Path, sink_port: int) -> tuple[Path, int, str, str]:
        """A fresh relay.toml, schema and pair; returns (config, port, db URL, pair address)."""
        url = self._database_url(folder)
        port = free_port()
        config = folder / "relay.toml"
        config.write_text(
            relay_toml(
                url,
                f'[smtp]\nhost = "{HOST}"\nport = {port}\n{SMTP_LIMITS}\n'
                '[delivery]\ntransport = "smtp"\npoll_interval = "1s"\n'
                'retry_first = "1s"\nretry_max = "2s"\n\n'
                f'[smarthost]\nhost = "{HOST}"\nport = {sink_port}\ntls = "none"\n'
                'timeout = "10s"\n\n[logging]\nlevel = "INFO"\n\n',
            )
        )
        self._relay(config, "db", "upgrade")
        if self.options.pairs > 1:
            self.targets = self._many_pairs(config, self.options.pairs)
            return config, port, url, self.targets[0][0]
        self._relay(config, "participant", "add", MENTOR, "--name", "Mentor", "--role", "mentor")
        self._relay(config, "participant", "add", MENTEE, "--name", "Mentee", "--role", "mentee")
        address = self._relay(config, "pair", "create", "--mentor", MENTOR, "--mentee", MENTEE)
        address = address.splitlines()[-1].strip()
        self.targets = [(address, MENTOR)]
        return config, port, url, address

    def _many_pairs(self, config: Path, count: int) -> list[Target]:
        """``count`` pairs made in one process (the relay's registry, as `pair create` does)."""
        result = subprocess.run(
            [sys.executable, "-c", MANY_PAIRS, str(config), str(count), str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            timeout=600,
            env=child_environment(self.options.snapshot),
            cwd=self.options.snapshot,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"making {count} pairs failed: {result.stderr.strip()}")
        return [(line.split()[0], line.split()[1]) for line in result.stdout.splitlines()]

    @contextlib.contextmanager
    def serve(self, folder: Path) -> Iterator[tuple[int, int, str, Outbox]]:
        """Sink + relay; yields (port, relay pid, pair address, outbox) once notices are out."""
        sink_port = free_port()
        # smtp-sink refuses to run as root without a user to switch to.
        as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink_command = [SMTP_SINK, *as_user, f"{HOST}:{sink_port}", "256"]
        with running(sink_command, sink_port, "smtp-sink", folder / "sink.log"):
            config, port, url, address = self._prepare(folder, sink_port)
            command = [*self.options.relay_command, "-c", str(config), "serve"]
            log = folder / "relay.log"
            with running(command, port, "relay serve", log, self.options.snapshot) as process:
                outbox = Outbox(url)
                try:
                    # The pairs' introductions go out first, outside the measurement.
                    wait = 30.0 + self.options.pairs / 20
                    outbox.wait(lambda: outbox.undelivered() == 0, wait, "introductions")
                    yield port, process.pid, address, outbox
                finally:
                    outbox.close()

    def throughput(self, folder: Path, size: int, connections: int) -> Throughput:
        messages = self.options.messages
        with self.serve(folder) as (port, pid, address, outbox):
            database_before = postgres_cpu_seconds() if self.options.database else None
            spy = self._start_profile(pid, f"{size_label(size).replace(' ', '')}-x{connections}")
            before, switched = cpu_seconds(pid), context_switches(pid)
            started = time.perf_counter()
            accept_seconds = (
                run_spread(port, messages, size, connections, self.targets, folder)
                if self.options.spread
                else self.options.send(port, messages, size, connections, address)
            )
            drain_timeout = max(120.0, messages / 5)  # bounded: 5 msg/s is far below any sane rate
            # Done when every message is delivered, or is a message that never will be
            # (held, rejected, discarded): those are reported, not waited for.
            outbox.wait(
                lambda: outbox.delivered_forwards() + outbox.not_forwarded() >= messages,
                drain_timeout,
                "drain",
                fail=False,
            )
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(pid) - before
            switched = context_switches(pid) - switched
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            database_cpu = (
                postgres_cpu_seconds() - database_before if database_before is not None else None
            )
            delivered = outbox.delivered_forwards()
            complete = delivered >= messages
            if not complete:
                print(
                    f"  ! relay delivered {delivered}/{messages} within {drain_timeout:.0f}s; "
                    f"message statuses: {outbox.statuses()} (see relay.log; --keep keeps it)",
                    file=sys.stderr,
                )
        return Throughput(
            max(delivered, 1),
            elapsed,
            accept_seconds,
            cpu,
            database_cpu,
            complete=complete,
            switches=switched,
        )

    def _start_profile(self, pid: int, label: str) -> subprocess.Popen[bytes] | None:
        """py-spy sampling every thread of the relay, in collapsed-stack form (--profile)."""
        if self.options.profile is None:
            return None
        self.options.profile.mkdir(parents=True, exist_ok=True)
        out = self.options.profile / f"{label}-{int(time.time())}.txt"
        command = ["py-spy", "record", "--pid", str(pid), "--gil", "-r", "200", "-f", "raw"]
        command += ["-o", str(out)]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached before the load starts
        return spy

    def latency(self, folder: Path, size: int) -> Latency:
        with self.serve(folder) as (port, _, address, _):
            return measure_latency(port, self.options.latency_messages, size, address)


class Outbox:
    """Read-only queries on the relay's database while it runs."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def _count(self, sql: str) -> int:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    def delivered_forwards(self) -> int:
        return self._count(
            "SELECT count(*) FROM outbox WHERE kind = 'forward' AND status = 'delivered'"
        )

    def not_forwarded(self) -> int:
        return self._count("SELECT count(*) FROM messages WHERE status <> 'queued'")

    def stored(self) -> int:
        return self._count("SELECT count(*) FROM messages")

    def queued_messages(self) -> int:
        return self._count("SELECT count(*) FROM messages WHERE status = 'queued'")

    def approved_at(self, message_id: int) -> float:
        """When `relay approve` recorded its decision, as a Unix time."""
        from datetime import UTC, datetime

        from sqlalchemy import text

        with self.engine.connect() as connection:
            value = connection.execute(
                text("SELECT created_at FROM moderation_actions WHERE message_id = :id"),
                {"id": message_id},
            ).scalar_one()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())

    def held_ids(self) -> list[int]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT id FROM messages WHERE status = 'held'"))
            return sorted(int(row[0]) for row in rows)

    def undelivered(self) -> int:
        return self._count("SELECT count(*) FROM outbox WHERE status <> 'delivered'")

    def statuses(self) -> dict[str, int]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT status, count(*) FROM messages GROUP BY status"))
            return {str(status): int(count) for status, count in rows}

    def wait(
        self, condition: Callable[[], bool], timeout: float, what: str, fail: bool = True
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(POLL_INTERVAL)
        if fail:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        return False

    def close(self) -> None:
        self.engine.dispose()


def empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def take_snapshot(into: Path) -> Path:
    """Copy relay/ and matching/ from this checkout, so edits made by others while the
    benchmark runs (a shared working tree) cannot change the code under measurement.

    templates/ and migrations/ go inside the copy's relay/, where an installed package
    has them; otherwise the editable install would map in the checkout's own.
    """
    checkout = Path(__file__).resolve().parent.parent
    for source, target in (
        ("relay", "relay"),
        ("matching", "matching"),
        ("templates", "relay/templates"),
        ("migrations", "relay/migrations"),
    ):
        shutil.copytree(
            checkout / source,
            into / target,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    check = subprocess.run(
        [sys.executable, "-m", "relay", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_environment(into),
        cwd=into,
        check=False,
    )
    if check.returncode != 0:
        raise RuntimeError(f"the snapshot of relay/ does not start:\n{check.stderr.strip()}")
    return into


# -- the runs and the report ---------------------------------------------------------------


@dataclass
class Row:
    """One configuration's results over all runs."""

    size: int
    connections: int
    bare: list[Throughput] = field(default_factory=list)
    relay: list[Throughput] = field(default_factory=list)


@dataclass
class LatencyRow:
    size: int
    bare: list[Latency] = field(default_factory=list)
    relay: list[Latency] = field(default_factory=list)
    fsync: list[Latency] = field(default_factory=list)  # the disk's floor, same run


def measure_fsync(folder: Path, count: int) -> Latency:
    """A plain write + fsync loop where the run's SQLite file lives: the floor of a
    durable commit (SQLite's synchronous=FULL fsyncs the WAL once per commit)."""
    samples: list[float] = []
    path = folder / "fsync-floor"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = os.urandom(4096)
        for _ in range(count):
            started = time.perf_counter()
            os.write(descriptor, block)
            os.fsync(descriptor)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(descriptor)
        path.unlink()
    return Latency(samples)


@contextlib.contextmanager
def run_folder(options: Options, label: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"relay-bench-{label}-"))
    try:
        yield folder
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run_all(
    options: Options, postgres: Options | None = None
) -> tuple[list[Row], list[LatencyRow], Row | None]:
    """Every row, run by run; postgres: its 1 KB x16 row too, in each run right after the
    SQLite rows of that run, so the two databases' figures are interleaved as the bare and
    the relay figures are (not all SQLite runs first, then all PostgreSQL runs)."""
    bare, relay = Bare(options), Relay(options)
    rows = [Row(size, conns) for size in options.sizes for conns in options.connections]
    latency_rows = [LatencyRow(size) for size in options.sizes]
    postgres_row = Row(1024, 16) if postgres is not None else None
    on_postgres = (Bare(postgres), Relay(postgres)) if postgres is not None else None
    for run in range(1, options.runs + 1):
        for row in rows:
            _throughput_run(options, run, row, bare, relay)
        for lrow in latency_rows:
            for server, lresults in ((bare, lrow.bare), (relay, lrow.relay)):
                with run_folder(options, f"{server.name}-latency") as folder:
                    latency = server.latency(folder, lrow.size)
                lresults.append(latency)
                print(
                    f"run {run}/{options.runs} {size_label(lrow.size):>5} latency "
                    f"{server.name:5}: p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms, "
                    f"first {latency.first_ms:.2f} ms",
                    flush=True,
                )
            with run_folder(options, "fsync") as folder:
                floor = measure_fsync(folder, max(options.latency_messages, 100))
            lrow.fsync.append(floor)
            print(
                f"run {run}/{options.runs} write+fsync 4 KB (the floor): "
                f"p50 {floor.p50_ms:.2f} ms, p99 {floor.p99_ms:.2f} ms",
                flush=True,
            )
        if postgres is not None and postgres_row is not None and on_postgres is not None:
            _throughput_run(postgres, run, postgres_row, *on_postgres)
    return rows, latency_rows, postgres_row


def _throughput_run(options: Options, run: int, row: Row, bare: Bare, relay: Relay) -> None:
    """One run of one row: the bare server, then the relay."""
    for server, results in ((bare, row.bare), (relay, row.relay)):
        label = f"{server.name}-{row.size}-{row.connections}"
        with run_folder(options, label) as folder:
            result = server.throughput(folder, row.size, row.connections)
        results.append(result)
        where = " on PostgreSQL" if options.database else ""
        print(
            f"run {run}/{options.runs} {size_label(row.size):>5} x{row.connections:<3} "
            f"{server.name:5}{where}: {result.rate:8.1f} msg/s "
            f"(accepted {result.accept_rate:8.1f} msg/s), "
            f"{result.cpu_ms:.2f} server CPU ms/msg, "
            f"{result.switches_per_message:.1f} context switches/msg"
            + ("" if result.complete else "  INCOMPLETE"),
            flush=True,
        )


def size_label(size: int) -> str:
    return f"{size // 1024} KB" if size % 1024 == 0 else f"{size} B"


def ratios(relay: Sequence[float], bare: Sequence[float]) -> float:
    """Median of the per-run ratios (each relay run against the bare run next to it)."""
    return median([r / b for r, b in zip(relay, bare, strict=True) if b])


def table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def report(options: Options, rows: list[Row], latency_rows: list[LatencyRow]) -> str:
    database = (
        re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", options.database)
        if options.database
        else "a SQLite file in the run's temp folder"
    )
    lines = [
        f"messages {options.messages} per run, {options.runs} runs, median; "
        f"ratio = median of per-run relay/bare; database: {database}; "
        f"load client: {options.client_name}; relay msg/s = delivered to the sink; "
        f"bare aiosmtpd on {options.bare_loop}"
        + (
            f"; replies (text + HTML quoting the pair address) spread over {options.pairs} "
            "pair(s), one smtp-source run (one session) per message"
            if options.spread
            else ""
        ),
        "",
    ]
    throughput_lines: list[list[str]] = []
    with_database = bool(options.database)
    for row in rows:
        bare_rates = [each.rate for each in row.bare]
        relay_rates = [each.rate for each in row.relay]
        bare_cpu = [each.cpu_ms for each in row.bare]
        relay_cpu = [each.cpu_ms for each in row.relay]
        line = [
            size_label(row.size),
            str(row.connections),
            f"{median(bare_rates):,.0f}",
            f"{median(relay_rates):,.0f}",
            f"{median([each.accept_rate for each in row.relay]):,.0f}",
            f"{ratios(relay_rates, bare_rates):.3f}",
            f"{median(bare_cpu):.2f}",
            f"{median(relay_cpu):.2f}",
            f"{ratios(relay_cpu, bare_cpu):.1f}",
            f"{median([each.switches_per_message for each in row.bare]):.1f}",
            f"{median([each.switches_per_message for each in row.relay]):.1f}",
        ]
        if with_database:
            database_ms = [each.database_cpu_ms or 0.0 for each in row.relay]
            line.append(f"{median(database_ms):.2f}")
        if not all(each.complete for each in row.relay):
            line[3] += " (incomplete)"
        throughput_lines.append(line)
    headers = [
        "size",
        "conns",
        "bare msg/s",
        "relay msg/s (delivered)",
        "relay msg/s (accepted)",
        "relay/bare",
        "bare CPU ms/msg",
        "relay CPU ms/msg",
        "CPU relay/bare",
        "bare switches/msg",
        "relay switches/msg",
    ]
    if with_database:
        headers.append("postgres CPU ms/msg")
    lines.append(table(headers, throughput_lines))
    lines.append("")
    latency_lines: list[list[str]] = []
    for lrow in latency_rows:
        bare50 = [each.p50_ms for each in lrow.bare]
        bare99 = [each.p99_ms for each in lrow.bare]
        relay50 = [each.p50_ms for each in lrow.relay]
        relay99 = [each.p99_ms for each in lrow.relay]
        latency_lines.append(
            [
                size_label(lrow.size),
                f"{median(bare50):.2f}",
                f"{median(bare99):.2f}",
                f"{median(relay50):.2f}",
                f"{median(relay99):.2f}",
                f"{ratios(relay50, bare50):.1f}",
                f"{ratios(relay99, bare99):.1f}",
                f"{median([each.p50_ms for each in lrow.fsync]):.2f}",
                f"{median([each.p99_ms for each in lrow.fsync]):.2f}",
                f"{median([each.first_ms for each in lrow.relay]):.2f}",
            ]
        )
    lines.append(
        f"latency: final dot -> 250, one smtplib connection, "
        f"{options.latency_messages} messages per run"
    )
    lines.append("")
    lines.append(
        table(
            [
                "size",
                "bare p50 ms",
                "bare p99 ms",
                "relay p50 ms",
                "relay p99 ms",
                "p50 relay/bare",
                "p99 relay/bare",
                "write+fsync p50 ms",
                "write+fsync p99 ms",
                "relay first ms",
            ],
            latency_lines,
        )
    )
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if part.endswith("kb") or part.endswith("k"):
            sizes.append(int(part.rstrip("kb")) * 1024)
        elif part:
            sizes.append(int(part))
    return sizes


def parse_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="per run (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3)")
    parser.add_argument("--sizes", default="1k,50k", help="comma-separated, e.g. 1k,50k")
    parser.add_argument("--connections", default="1,16", help="comma-separated, e.g. 1,16")
    parser.add_argument(
        "--latency-messages", type=int, default=300, help="latency samples per run (default 300)"
    )
    parser.add_argument(
        "--database",
        default=None,
        help="a postgresql+psycopg:// URL, emptied before every relay run "
        "(default: a fresh SQLite file per run)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 messages, 1 run")
    parser.add_argument("--keep", action="store_true", help="keep temp folders (logs, DBs)")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="run `python -m relay` from a copy of relay/ taken at start "
        "(the working tree is shared with other engineers)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record a py-spy profile of each relay throughput run into this folder "
        "(summarise with bench/profile_summary.py)",
    )
    parser.add_argument(
        "--more",
        action="store_true",
        help="also measure approval latency, recovery after kill -9, idle connections "
        "and (with --database) two processes on one PostgreSQL",
    )
    parser.add_argument("--only-more", action="store_true", help="--more without throughput")
    parser.add_argument("--idle", type=int, default=500, help="idle sessions (default 500)")
    parser.add_argument(
        "--more-rows",
        default="approval,recovery,idle,two",
        help="which --more rows, comma-separated (default approval,recovery,idle,two)",
    )
    parser.add_argument(
        "--recovery-timeout", type=float, default=330.0, help="seconds (default 330)"
    )
    parser.add_argument(
        "--relay-code",
        type=Path,
        default=None,
        help="run `python -m relay` from this folder (holding relay/ and matching/, with "
        "templates/ and migrations/ moved into relay/), e.g. an earlier commit unpacked "
        "with git archive, instead of this checkout",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="a postgresql+psycopg:// URL: besides the SQLite rows, 1 KB x16 on it (the "
        "PostgreSQL row) and, with --more, the two-process row; emptied before each run",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="spread the messages over this many pairs (default 1); sends replies as --reply "
        "does, one smtp-source run per message",
    )
    parser.add_argument(
        "--reply",
        action="store_true",
        help="send replies (text and HTML quoting the pair address: what makes the relay "
        "scrub) instead of smtp-source's body, one smtp-source run per message",
    )
    parser.add_argument(
        "--bare-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the bare aiosmtpd server's event loop (default asyncio, the stock server the "
        "targets name; uvloop: the loop `relay serve` runs on by default)",
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.bare_server is not None:
        serve_bare(arguments.bare_server, arguments.bare_loop)
        return 0
    if shutil.which("relay") is None:
        print("the `relay` command is not on PATH (pip install -e .)", file=sys.stderr)
        return 2
    if not Path(SMTP_SINK).exists():
        print(f"{SMTP_SINK} is missing (apt-get install postfix)", file=sys.stderr)
        return 2
    if Path(SMTP_SOURCE).exists():
        send, client_name = run_smtp_source, "Postfix smtp-source -d"
    else:
        send, client_name = run_asyncio_source, "aiosmtplib FALLBACK (smtp-source missing)"
        print("smtp-source is missing: using an asyncio client, which caps the figures")
    options = Options(
        messages=200 if arguments.quick else arguments.messages,
        latency_messages=50 if arguments.quick else arguments.latency_messages,
        runs=1 if arguments.quick else arguments.runs,
        sizes=parse_sizes(arguments.sizes),
        connections=parse_ints(arguments.connections),
        database=arguments.database,
        keep=arguments.keep,
        profile=arguments.profile,
        send=send,
        client_name=client_name,
        pairs=max(1, arguments.pairs),
        reply=arguments.reply,
        bare_loop=arguments.bare_loop,
    )
    with contextlib.ExitStack() as cleanup:
        if arguments.snapshot:
            folder = Path(tempfile.mkdtemp(prefix="relay-bench-snapshot-"))
            cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
            options.snapshot = take_snapshot(folder)
            options.relay_command = [sys.executable, "-m", "relay"]
            print(f"relay code: snapshot of {Path(__file__).resolve().parent.parent / 'relay'}")
        elif arguments.relay_code is not None:
            options.snapshot = arguments.relay_code.resolve()
            options.relay_command = [sys.executable, "-m", "relay"]
            print(f"relay code: {options.snapshot}")
        postgres = (
            replace(options, database=arguments.postgres, sizes=[1024], connections=[16])
            if arguments.postgres
            else None
        )
        rows: list[Row] = []
        latency_rows: list[LatencyRow] = []
        postgres_row: Row | None = None
        if not arguments.only_more:
            rows, latency_rows, postgres_row = run_all(options, postgres)
        more = run_more(options, arguments) if arguments.more or arguments.only_more else ""
    print()
    if rows:
        print(report(options, rows, latency_rows))
    if postgres is not None and postgres_row is not None:
        print()
        print(report(postgres, [postgres_row], []).split("\n\nlatency:")[0])
        print(postgres_against_sqlite(rows, postgres_row))
    if more:
        print()
        print(more)
    return 0


def postgres_against_sqlite(rows: list[Row], postgres: Row) -> str:
    """The PostgreSQL row's relay/bare as a share of the SQLite row's (same size and load)."""
    sqlite = next(
        (r for r in rows if (r.size, r.connections) == (postgres.size, postgres.connections)),
        None,
    )
    if sqlite is None:
        return "PostgreSQL against SQLite: no SQLite row at 1 KB x16 in this run"
    on_postgres = ratios([r.rate for r in postgres.relay], [b.rate for b in postgres.bare])
    on_sqlite = ratios([r.rate for r in sqlite.relay], [b.rate for b in sqlite.bare])
    # Run by run: each PostgreSQL run's relay/bare against the SQLite run just before it.
    shares = [
        (pr.rate / pb.rate) / (sr.rate / sb.rate)
        for pr, pb, sr, sb in zip(
            postgres.relay, postgres.bare, sqlite.relay, sqlite.bare, strict=True
        )
        if pb.rate and sb.rate and sr.rate
    ]
    if not shares:
        return "PostgreSQL against SQLite: a run delivered nothing; no share to give"
    by_run = ", ".join(f"{share:.2f}" for share in shares)
    return (
        f"PostgreSQL 1 KB x16 relay/bare {on_postgres:.3f} against SQLite's {on_sqlite:.3f}: "
        f"{on_postgres / on_sqlite:.2f} of the SQLite figure; run by run (each against the "
        f"SQLite run before it) {by_run}: median {median(shares):.2f}"
    )


def run_more(options: Options, arguments: argparse.Namespace) -> str:
    """Issue 14's remaining rows; runs interleaved where there is a baseline."""
    import scenarios

    bare, relay = Bare(options), Relay(options)
    lines = []
    approvals: list[float] = []
    after_exit: list[float] = []
    recoveries: list[scenarios.Recovery] = []
    idle: dict[str, list[tuple[float, float, int]]] = {"bare": [], "relay": []}
    pairs: list[tuple[scenarios.Load, scenarios.Load]] = []
    for run in range(1, options.runs + 1):
        wanted = set(arguments.more_rows.split(","))
        if "approval" in wanted:
            with run_folder(options, "approval") as folder:
                total, exited = scenarios.approval_latency(relay, folder)
            approvals += total
            after_exit += exited
            print(f"run {run}: approval -> delivered {[f'{t:.2f}' for t in total]} s", flush=True)
        if "recovery" in wanted:
            with run_folder(options, "recovery") as folder:
                result = scenarios.recovery(
                    relay, folder, options.messages, arguments.recovery_timeout
                )
            recoveries.append(result)
            print(f"run {run}: recovery {result}", flush=True)
        for server in (bare, relay) if "idle" in wanted else ():
            with run_folder(options, f"idle-{server.name}") as folder:
                figures = scenarios.idle_effect(server, folder, options, arguments.idle)
            idle[server.name].append(figures)
            print(f"run {run}: idle {server.name} {figures}", flush=True)
        if "two" in wanted and (options.database or arguments.postgres):
            on_postgres = Relay(replace(options, database=options.database or arguments.postgres))
            with run_folder(options, "two") as folder:
                pairs.append(scenarios.two_processes(on_postgres, folder, options.messages))
            print(f"run {run}: one vs two processes {pairs[-1]}", flush=True)
    if approvals:
        lines.append(
            f"approval: `relay approve ID` (a new process) -> file in the Maildir, daemon polling "
            f"every 10 s; {len(approvals)} approvals: median {median(approvals):.2f} s, "
            f"max {max(approvals):.2f} s, the command's own start-up included; from the "
            f"approval's commit to the file: median {median(after_exit):.3f} s, "
            f"max {max(after_exit):.3f} s"
        )
    if recoveries:
        lines.append(
            "recovery: kill -9 with a third of "
            f"{options.messages} x 1 KB stored (16 connections, Maildir, 5-minute lease), "
            "restart -> every stored forward delivered: "
            + ", ".join(
                f"{r.seconds:.1f} s" + ("" if r.complete else " (timed out)") for r in recoveries
            )
            + f"; duplicates in the Maildir: {[r.duplicates for r in recoveries]}"
        )
    for name, figures in idle.items():
        if not figures:
            continue
        ratio = median([loaded / plain for plain, loaded, _ in figures])
        lines.append(
            f"idle: {name}, 1 KB x16 with {figures[0][2]} idle sessions held open: "
            f"{median([f[1] for f in figures]):,.0f} msg/s against "
            f"{median([f[0] for f in figures]):,.0f} without (with/without {ratio:.2f})"
        )
    if pairs:
        ratio = median([two.rate / one.rate for one, two in pairs])
        ones, twos = [one for one, _ in pairs], [two for _, two in pairs]
        lines.append(
            f"two processes on one PostgreSQL (8 connections each) against one (16): "
            f"{median([t.rate for t in twos]):,.0f} against {median([o.rate for o in ones]):,.0f} "
            f"delivered msg/s (two/one {ratio:.2f}); the machine's {os.cpu_count()} cores "
            f"{median([t.busy for t in twos]):.0%} busy against "
            f"{median([o.busy for o in ones]):.0%}; the machine's CPU per delivered message "
            f"(every process) {median([t.machine_ms for t in twos]):.2f} against "
            f"{median([o.machine_ms for o in ones]):.2f} ms"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
