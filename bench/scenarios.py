"""The benchmark's figures beyond throughput and latency (issue 14's table).

Owns four measurements bench/throughput.py runs next to its throughput rows:

- approval: `relay approve ID` with the daemon running (default 10 s poll), from
  starting the command to the file in the recipient's Maildir;
- recovery: kill -9 `relay serve` under smtp-source load (Maildir transport, the
  default 5-minute lease), restart it, and time until every stored forward is
  delivered; then count Message-IDs found twice in the Maildir;
- two processes: two `relay serve` on one PostgreSQL database, the load split
  between them, against one process taking all of it (same run, interleaved);
- idle connections: the 16-connection load's rate with N idle SMTP sessions held
  open, against without, for bare aiosmtpd and for the relay.
"""

from __future__ import annotations

import contextlib
import email
import os
import smtplib
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from throughput import (
    HOST,
    MENTEE,
    MENTOR,
    SMTP_LIMITS,
    SMTP_SINK,
    Outbox,
    child_environment,
    free_port,
    relay_toml,
    running,
    wait_listening,
)

if TYPE_CHECKING:
    from throughput import Bare, Options, Relay

HOLD_PHRASE = "please hold for the bench"


@dataclass
class Setup:
    config: Path
    port: int
    url: str
    address: str
    maildir: Path


def _write_config(relay: Relay, folder: Path, delivery: str, extra: str = "") -> Setup:
    url = relay._database_url(folder)
    port = free_port()
    config = folder / "relay.toml"
    sections = (
        f'[smtp]\nhost = "{HOST}"\nport = {port}\n{SMTP_LIMITS}\n'
        f"[delivery]\n{delivery}\n\n"
        f'[daemon]\npid_file = "{folder / "relay.pid"}"\n\n'
        '[logging]\nlevel = "INFO"\n\n'
    )
    config.write_text(relay_toml(url, sections) + extra)
    relay._relay(config, "db", "upgrade")
    relay._relay(config, "participant", "add", MENTOR, "--name", "Mentor", "--role", "mentor")
    relay._relay(config, "participant", "add", MENTEE, "--name", "Mentee", "--role", "mentee")
    address = relay._relay(config, "pair", "create", "--mentor", MENTOR, "--mentee", MENTEE)
    return Setup(config, port, url, address.splitlines()[-1].strip(), folder / "outbox")


def _maildir_files(setup: Setup) -> list[Path]:
    box = setup.maildir / MENTEE  # MaildirTransport keeps [a-z0-9@._+-] as they are
    return [path for sub in ("new", "cur") for path in (box / sub).glob("*") if path.is_file()]


@contextlib.contextmanager
def _relay_process(relay: Relay, setup: Setup, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [*relay.options.relay_command, "-c", str(setup.config), "serve"]
    with running(
        command, setup.port, "relay serve", folder / "relay.log", relay.options.snapshot
    ) as p:
        yield p


# -- approval latency --------------------------------------------------------------------


def approval_latency(
    relay: Relay, folder: Path, samples: int = 5
) -> tuple[list[float], list[float]]:
    """(command start -> file in Maildir, approval recorded -> file), seconds, per approval."""
    setup = _write_config(
        relay,
        folder,
        'transport = "maildir"\nmaildir = "outbox"',  # poll_interval: the default 10 s
        f'\n[rules.keywords]\nphrases = ["{HOLD_PHRASE}"]\n',
    )
    total: list[float] = []
    after_exit: list[float] = []
    with _relay_process(relay, setup, folder):
        outbox = Outbox(setup.url)
        try:
            outbox.wait(lambda: outbox.undelivered() == 0, 30.0, "introductions")
            with smtplib.SMTP(HOST, setup.port, timeout=30) as client:
                for n in range(samples):
                    body = f"Subject: held {n}\r\nFrom: <{MENTOR}>\r\nTo: <{setup.address}>\r\n\r\n"
                    client.sendmail(MENTOR, [setup.address], (body + HOLD_PHRASE + "\r\n").encode())
            held = outbox.held_ids()
            outbox.wait(lambda: outbox.undelivered() == 0, 30.0, "held notices")
            for message_id in held:
                before = set(_maildir_files(setup))
                started = time.perf_counter()
                relay._relay(setup.config, "approve", str(message_id), "--as", "bench")
                outbox.wait(
                    lambda b=before: len(set(_maildir_files(setup)) - b) > 0, 30.0, "approved mail"
                )
                total.append(time.perf_counter() - started)
                (new_file,) = set(_maildir_files(setup)) - before
                # From the approval's own timestamp (written by `relay approve` in the
                # commit) to the file: the relay's part, without the command's start-up.
                approved_at = outbox.approved_at(message_id)
                after_exit.append(new_file.stat().st_mtime - approved_at)
        finally:
            outbox.close()
    return total, after_exit


# -- recovery after kill -9 ------------------------------------------------------------------


@dataclass
class Recovery:
    stored_at_kill: int
    seconds: float  # restart -> every stored forward delivered
    duplicates: int  # Message-IDs found more than once in the Maildir
    complete: bool


def recovery(relay: Relay, folder: Path, messages: int, timeout: float) -> Recovery:
    setup = _write_config(relay, folder, 'transport = "maildir"\nmaildir = "outbox"')
    command = [*relay.options.relay_command, "-c", str(setup.config), "serve"]
    log = (folder / "relay.log").open("ab")
    environment = child_environment(relay.options.snapshot)
    cwd = relay.options.snapshot  # see throughput.running: the snapshot, not a checkout
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=cwd
    )
    outbox = Outbox(setup.url)
    source: subprocess.Popen[bytes] | None = None
    try:
        wait_listening(setup.port, process, "relay serve")
        outbox.wait(lambda: outbox.undelivered() == 0, 30.0, "introductions")
        source = subprocess.Popen(
            _smtp_source(setup.port, messages, 1024, 16, setup.address),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill while both intake and delivery are busy: a third of the load stored.
        outbox.wait(lambda: outbox.stored() >= messages // 3, 120.0, "load to build up")
        process.kill()
        process.wait(10)
        stored = outbox.stored()
        with contextlib.suppress(subprocess.TimeoutExpired):
            source.wait(30)
        restarted = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=cwd
        )
        complete = outbox.wait(
            lambda: outbox.delivered_forwards() >= outbox.queued_messages(),
            timeout,
            "recovery",
            fail=False,
        )
        seconds = time.perf_counter() - restarted
        ids = Counter(
            email.message_from_bytes(path.read_bytes()).get("Message-ID", "")
            for path in _maildir_files(setup)
        )
        duplicates = sum(count - 1 for count in ids.values())
        return Recovery(stored, seconds, duplicates, complete)
    finally:
        if source is not None and source.poll() is None:
            source.kill()
            source.wait()
        if process.poll() is None:
            process.terminate()
            process.wait(15)
        outbox.close()
        log.close()


def _smtp_source(port: int, messages: int, size: int, connections: int, to: str) -> list[str]:
    from throughput import SMTP_SOURCE

    return [
        SMTP_SOURCE, "-d", "-s", str(connections), "-m", str(messages), "-l", str(size),
        "-f", MENTOR, "-t", to, f"{HOST}:{port}",
    ]  # fmt: skip


# -- two processes on one PostgreSQL ---------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One load on the relay processes: its delivered rate and what it cost the machine."""

    rate: float  # delivered msg/s
    busy: float  # share of the machine's cores busy meanwhile (every process, 0..1)
    machine_ms: float  # the machine's CPU (every process) per delivered message, ms


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    ticks = os.sysconf("SC_CLK_TCK")
    return (total - idle) / ticks, total / ticks


def two_processes(relay: Relay, folder: Path, messages: int) -> tuple[Load, Load]:
    """(one process with 16 connections, two processes with 8 each).

    With the machine's busy share beside each rate: on a 2-core machine one process,
    PostgreSQL, the sink and the load clients can already fill most of both cores,
    and then no second process can add what the cores do not have.
    """

    sink_port = free_port()
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink_command = [SMTP_SINK, *as_user, f"{HOST}:{sink_port}", "256"]
    with running(sink_command, sink_port, "smtp-sink", folder / "sink.log"):
        one = _load_on_processes(relay, folder / "one", sink_port, 1, messages)
        two = _load_on_processes(relay, folder / "two", sink_port, 2, messages)
    return one, two


def _load_on_processes(
    relay: Relay, folder: Path, sink_port: int, processes: int, messages: int
) -> Load:
    folder.mkdir()
    smarthost = (
        f'transport = "smtp"\npoll_interval = "1s"\n\n'
        f'[smarthost]\nhost = "{HOST}"\nport = {sink_port}\ntls = "none"'
    )
    setup = _write_config(relay, folder, smarthost)
    ports = [setup.port]
    configs = [setup.config]
    if processes == 2:
        second = folder / "second.toml"
        ports.append(free_port())
        second.write_text(
            setup.config.read_text()
            .replace(f"port = {setup.port}\n", f"port = {ports[1]}\n")
            .replace("relay.pid", "second.pid")
        )
        configs.append(second)
    with contextlib.ExitStack() as stack:
        for n, (config, port) in enumerate(zip(configs, ports, strict=True)):
            command = [*relay.options.relay_command, "-c", str(config), "serve"]
            log = folder / f"relay{n}.log"
            stack.enter_context(running(command, port, "relay", log, relay.options.snapshot))
        outbox = stack.enter_context(contextlib.closing(Outbox(setup.url)))
        outbox.wait(lambda: outbox.undelivered() == 0, 30.0, "introductions")
        started = time.perf_counter()
        busy_before, total_before = machine_cpu()
        share = messages // processes
        sources = [
            subprocess.Popen(
                _smtp_source(port, share, 1024, 16 // processes, setup.address),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        for source in sources:
            source.wait(max(120, messages))
        outbox.wait(
            lambda: outbox.delivered_forwards() >= share * processes,
            max(120.0, messages / 5),
            "drain",
            fail=False,
        )
        elapsed = time.perf_counter() - started
        busy_after, total_after = machine_cpu()
        delivered = max(outbox.delivered_forwards(), 1)
        return Load(
            rate=delivered / elapsed,
            busy=(busy_after - busy_before) / (total_after - total_before),
            machine_ms=1000 * (busy_after - busy_before) / delivered,
        )


# -- idle connections -----------------------------------------------------------------------


@contextlib.contextmanager
def idle_sessions(port: int, count: int) -> Iterator[int]:
    """count SMTP sessions that connect, read the greeting and then say nothing."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                sock = socket.create_connection((HOST, port), timeout=10)
                sock.recv(512)
            except OSError:
                break  # refused or no greeting: the server's limit, which is the point
            sockets.append(sock)
        yield len(sockets)
    finally:
        for sock in sockets:
            sock.close()


def idle_effect(
    server: Bare | Relay, folder: Path, options: Options, count: int
) -> tuple[float, float, int]:
    """(msg/s without idle sessions, msg/s with them, how many idle sessions it held)."""
    messages = options.messages
    if server.name == "bare":
        with server.serve(folder) as (port, _, to):  # type: ignore[union-attr]
            plain = messages / options.send(port, messages, 1024, 16, to)
            with idle_sessions(port, count) as held:
                loaded = messages / options.send(port, messages, 1024, 16, to)
        return plain, loaded, held
    with server.serve(folder) as (port, _, address, outbox):  # type: ignore[misc]
        rates = []
        for round_number, idle in enumerate((0, count), start=1):
            with idle_sessions(port, idle) as held:
                started = time.perf_counter()
                options.send(port, messages, 1024, 16, address)
                outbox.wait(
                    lambda n=round_number: outbox.delivered_forwards() >= n * messages,
                    max(120.0, messages / 5),
                    "drain",
                    fail=False,
                )
                rates.append(messages / (time.perf_counter() - started))
        return rates[0], rates[1], held
