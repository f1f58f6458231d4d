"""`relay serve`: the sources and the delivery worker in one event loop.

Owns the daemon's life: open the store (refusing a schema that is behind),
start the SMTP or LMTP server (unless [smtp] enabled = false), the IMAP source (when
[imap] is set), the worker, the moderator alerts, the safeguarding checks,
the health heartbeat, the programme scheduler (every [programme] tick_interval)
and the metrics endpoint;
tell systemd READY=1 and write the pid file; on SIGHUP reload what can be
reloaded; on SIGTERM or SIGINT stop in order: new sessions get 421, DATA in
progress commits, the IMAP source finishes the message in hand, deliveries
in flight get a bounded time to finish, and the process exits 0.

A reload re-reads relay.toml and swaps in the new moderation rules, keyword
lists, templates and moderator addresses; open SMTP sessions are not
touched. A file that does not load keeps the old settings, and the log says
why. Listening addresses, the database, the transport and [imap] need a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from relay.config import Config, load_config
from relay.delivery.notices import Notices
from relay.delivery.transports import make_transport
from relay.delivery.worker import DeliveryWorker, close_transport
from relay.errors import RelayError
from relay.intake import Intake
from relay.moderation.decisions import queue_moderator_alert
from relay.ops import event_loop, sdnotify
from relay.ops.health import HealthWatch
from relay.ops.metrics import Metrics
from relay.ops.wakeup import WakeListener
from relay.programme.scheduler import Scheduler, make_scheduler
from relay.rules.engine import build_rules
from relay.safeguarding import tick as safeguarding_tick
from relay.sources import deadline
from relay.sources.imap import ImapSource
from relay.sources.listener import inbound_server
from relay.sources.smtp import SmtpServer
from relay.store.db import Store, open_store
from relay.store.group_commit import GroupWriter
from relay.store.notify import PostgresListener, stop_listener
from relay.store.states import utcnow
from relay.warmup import warm_up

log = logging.getLogger(__name__)

ALERT_CHECK_SECONDS = 30.0
RESTART_ONLY = ("database", "smtp", "imap", "delivery", "smarthost", "metrics", "daemon", "dkim")


@dataclass
class Running:
    """The parts of a running relay; tests drive one in-process through start/stop."""

    config: Config
    store: Store
    worker: DeliveryWorker
    smtp: SmtpServer | None
    stopping: asyncio.Event
    intakes: list[Intake] = field(default_factory=list)
    metrics: Metrics | None = None
    scheduler: Scheduler | None = None
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    wake_listener: WakeListener | None = None
    notifications: PostgresListener | None = None  # LISTEN/NOTIFY, on PostgreSQL only
    notification_task: asyncio.Task[None] | None = None


# Threads for intake and the store. A message's thread waits for its group commit, so
# with asyncio's default (cores + 4) a batch could never hold more than about six
# messages; waiting threads cost no CPU.
WORKER_THREADS = 64


async def start(config: Config) -> Running:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="relay")
    )
    store = await asyncio.to_thread(open_store, config.database.url, config.database)
    # One group writer: new messages and delivery outcomes share commits.
    writer = GroupWriter(store)
    # The worker reads its signing key from the database: not on the event loop.
    worker = await asyncio.to_thread(
        DeliveryWorker, store, config, make_transport(config), Notices(config), None, writer
    )
    running = Running(config, store, worker, None, asyncio.Event())
    # Commands that queue mail (approve, retry, pair create) wake the worker at once.
    running.wake_listener = WakeListener(config.daemon.pid_file, worker.wake)
    running.wake_listener.start(asyncio.get_running_loop())
    if config.metrics.enabled:
        running.metrics = Metrics(store)
        running.metrics.serve(config.metrics.host, config.metrics.port)
        worker.on_attempt = running.metrics.delivery_attempt
    if config.smtp.enabled:
        intake = Intake(store, config, writer)
        running.intakes.append(intake)
        # Before the listener opens: the first client's message costs no more than the next.
        await asyncio.to_thread(warm_up, intake, worker)
        running.smtp = inbound_server(config, intake, on_queued=worker.wake)
        if running.metrics is not None:
            running.smtp.handler.on_outcome = running.metrics.observe
        await running.smtp.start()
    if not store.is_sqlite:
        # Commands on any host NOTIFY; the local socket above only reaches this host.
        running.notifications = PostgresListener(
            config.database, worker.wake, functools.partial(forget_pairs, running)
        )
        running.notification_task = asyncio.create_task(
            running.notifications.run(), name="notifications"
        )
    tasks = running.tasks
    tasks["delivery"] = asyncio.create_task(worker.run(running.stopping), name="delivery")
    tasks["alerts"] = asyncio.create_task(alert_moderators(running), name="alerts")
    tasks["safeguarding"] = asyncio.create_task(safeguarding_checks(running), name="safeguarding")
    health = HealthWatch(store, config)
    tasks["health"] = asyncio.create_task(health.run(running.stopping), name="health")
    running.scheduler = await asyncio.to_thread(
        make_scheduler, store, config, worker.notices, False
    )
    tasks["scheduler"] = asyncio.create_task(run_scheduler(running), name="scheduler")
    if config.imap.enabled:
        intake = Intake(store, config, writer)
        running.intakes.append(intake)
        source = ImapSource(config, store, intake, on_queued=worker.wake)
        tasks["imap"] = asyncio.create_task(source.run(running.stopping), name="imap")
    return running


def forget_pairs(running: Running) -> None:
    """A pair or participant changed (NOTIFY): empty every intake's pair directory cache."""
    for intake in running.intakes:
        intake.directory.forget()


async def alert_moderators(running: Running) -> None:
    """Now and then, tell moderators what waits (moderation decides whether it is time)."""

    def check() -> bool:
        config = running.config  # read anew each time: a reload may change the moderators
        with running.store.session() as session:
            return queue_moderator_alert(session, config, running.worker.notices)

    await every(
        running,
        lambda: min(running.config.moderation.alert_interval.total_seconds(), ALERT_CHECK_SECONDS),
        check,
        "checking for moderator alerts failed",
    )


async def safeguarding_checks(running: Running) -> None:
    """Every [safeguarding] check_interval: overdue holds, expiring background checks.

    A programme scheduler, when there is one, may call relay.safeguarding.tick.run instead.
    """

    def check() -> bool:
        with running.store.session() as session:
            return safeguarding_tick.run(session, running.config, running.worker.notices)

    await every(
        running,
        lambda: running.config.safeguarding.check_interval.total_seconds(),
        check,
        "the safeguarding checks failed",
    )


async def every(
    running: Running, seconds: Callable[[], float], check: Callable[[], bool], failed: str
) -> None:
    """Run ``check`` in a thread every ``seconds()`` (read anew: a reload may change it)
    until the daemon stops; wake the delivery worker when it queued mail."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(running.stopping.wait(), timeout=seconds())
        if running.stopping.is_set():
            return
        try:
            if await asyncio.to_thread(check):
                running.worker.wake()
        except Exception:
            log.exception(failed)


async def run_scheduler(running: Running) -> None:
    """Every [programme] tick_interval, queue the programme's due items and nudges."""
    scheduler = running.scheduler
    assert scheduler is not None
    while not running.stopping.is_set():
        try:
            report = await asyncio.to_thread(scheduler.tick, utcnow())
            if report.sent or report.completed or report.nudged or report.offers:
                log.info("programme tick: %s", report)
                running.worker.wake()
        except Exception:
            log.exception("the programme tick failed")
        period = running.config.programme.tick_interval.total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(running.stopping.wait(), timeout=period)


def reload(running: Running) -> bool:
    """Re-read relay.toml and apply what can change while running; False keeps the old."""
    old = running.config
    try:
        new = load_config(old.source)
        notices = Notices(new)
        notices.check()
        build_rules(new.rules)
    except RelayError as error:
        log.error("reload failed, keeping the old settings: %s", error)
        return False
    if running.scheduler is not None and not running.scheduler.reload(new, notices):
        log.error("reload: keeping the old curricula and [programme] settings")
    for intake in running.intakes:
        intake.reload(new, notices)
    running.worker.notices = notices
    running.config = new
    needs_restart = [name for name in RESTART_ONLY if getattr(new, name) != getattr(old, name)]
    if needs_restart:
        log.warning("changes to [%s] take effect at the next restart", "], [".join(needs_restart))
    log.info("reloaded %s", new.source)
    return True


async def stop(running: Running, grace_seconds: float | None = None) -> list[str]:
    """Stop the parts in order, all within one grace period; the names of parts left busy."""
    grace = grace_seconds
    if grace is None:
        grace = running.config.daemon.stop_grace.total_seconds()
    loop = asyncio.get_running_loop()
    deadline_at = loop.time() + grace

    def left() -> float:
        return max(deadline_at - loop.time(), 0.0)

    left_behind: list[str] = []
    running.stopping.set()
    if running.wake_listener is not None:
        running.wake_listener.stop(loop)
    await stop_listener(running.notification_task)
    if running.smtp is not None and not await running.smtp.stop(left()):
        left_behind.append("smtp")
    for name in ("alerts", "safeguarding", "scheduler", "health", "imap", "delivery"):
        task = running.tasks.get(name)
        if task is None:
            continue
        try:
            # Every IMAP call is bounded; rows still being sent keep their lease.
            await asyncio.wait_for(task, timeout=left())
        except TimeoutError:
            log.warning("%s still busy after the %ss stop grace; leaving it", name, grace)
            left_behind.append(name)
    try:
        # Commits what intake and delivery queued; bounded like the rest of the stop.
        await asyncio.wait_for(asyncio.to_thread(running.worker.writer.close), timeout=left())
    except TimeoutError:
        log.warning("the group writer still busy after the %ss stop grace; leaving it", grace)
        left_behind.append("group commit")
    await close_transport(running.worker.transport)
    for intake in running.intakes:
        intake.intake_thread.close()  # its last messages were answered (or given 451) above
    # A worker thread stuck in a database call would keep dispose() (and the
    # process) waiting: it gets what is left of the grace, like everything else.
    try:
        await asyncio.wait_for(asyncio.to_thread(running.store.dispose), timeout=max(left(), 1.0))
    except TimeoutError:
        left_behind.append("database")
    return left_behind


async def serve(config: Config) -> None:
    running = await start(config)
    # Everything built at start-up lives as long as the daemon: out of the collector's
    # sight, the first full collection no longer stops every thread for ~60 ms under
    # load (the one-connection DATA -> 250 p99 was that pause).
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    reload_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    pid_file = config.daemon.pid_file
    _write_pid_file(config)
    sdnotify.ready(f"relaying mail for {config.relay.domain}")
    log.info("relay for %s is running on %s", config.relay.domain, event_loop.name_of(loop))
    try:
        while not stop_requested.is_set():
            waiters = [
                asyncio.ensure_future(stop_requested.wait()),
                asyncio.ensure_future(reload_requested.wait()),
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if reload_requested.is_set() and not stop_requested.is_set():
                reload_requested.clear()
                sdnotify.reloading()
                await asyncio.to_thread(reload, running)
                sdnotify.ready()
        log.info("stopping")
        sdnotify.stopping()
        left_behind = await stop(running)
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
    log.info("stopped")
    _leave_stuck_threads(left_behind)


def _leave_stuck_threads(left_behind: list[str]) -> None:
    """Exit now if a worker thread may still be busy (an intake stuck in a frozen database).

    asyncio.run() and the interpreter both join every worker thread on the way
    out, and a thread cannot be interrupted, so SIGTERM would wait for it for
    as long as it takes. Nothing such a thread holds was acknowledged (its
    client got 451 or nothing, a delivery keeps its lease), so no mail is lost.
    """
    busy = left_behind + (["intake"] if deadline.threads_in_flight() else [])
    if not busy:
        return
    log.warning("%s still busy in a worker thread; exiting without it", ", ".join(busy))
    logging.shutdown()
    os._exit(0)


def _write_pid_file(config: Config) -> None:
    path = config.daemon.pid_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")
    except OSError as error:
        log.warning("cannot write the pid file %s: %s", path, error.strerror)
