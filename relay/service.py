"""`relay serve`: the sources and the delivery worker in one event loop.

Owns the daemon's life: open the store (refusing a schema that is behind),
start the SMTP server and the worker, wait for SIGTERM or SIGINT, then stop
in order: new sessions get 421, DATA in progress commits, deliveries in
flight get a bounded time to finish, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from relay.config import Config
from relay.db import Store, open_store
from relay.delivery import DeliveryWorker, close_transport
from relay.intake import Intake
from relay.moderation import queue_moderator_alert
from relay.notices import Notices
from relay.sources.smtp import RelayHandler, SmtpServer
from relay.transports import make_transport

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30.0
ALERT_CHECK_SECONDS = 30.0


@dataclass
class Running:
    """The parts of a running relay, for tests that drive one in-process."""

    store: Store
    worker: DeliveryWorker
    smtp: SmtpServer | None
    stopping: asyncio.Event
    worker_task: asyncio.Task[None]
    alerts_task: asyncio.Task[None] | None = None


async def start(config: Config) -> Running:
    store = await asyncio.to_thread(open_store, config.database.url)
    notices = Notices(config)
    worker = DeliveryWorker(store, config, make_transport(config), notices)
    smtp = None
    if config.smtp.enabled:
        handler = RelayHandler(
            Intake(store, config), config.relay.max_recipients, on_queued=worker.wake
        )
        smtp = SmtpServer(config, handler)
        await smtp.start()
    stopping = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stopping), name="delivery")
    alerts_task = None
    if config.moderation.moderators:
        alerts_task = asyncio.create_task(
            alert_moderators(store, config, notices, worker, stopping), name="alerts"
        )
    return Running(store, worker, smtp, stopping, worker_task, alerts_task)


async def alert_moderators(
    store: Store, config: Config, notices: Notices, worker: DeliveryWorker, stopping: asyncio.Event
) -> None:
    """Now and then, tell moderators what waits (moderation decides whether it is time)."""

    def check() -> bool:
        with store.session() as session:
            return queue_moderator_alert(session, config, notices)

    period = min(config.moderation.alert_interval.total_seconds(), ALERT_CHECK_SECONDS)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=period)
        if stopping.is_set():
            return
        try:
            if await asyncio.to_thread(check):
                worker.wake()
        except Exception:
            log.exception("checking for moderator alerts failed")


async def stop(running: Running, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    running.stopping.set()
    if running.smtp is not None:
        await running.smtp.stop(grace_seconds)
    if running.alerts_task is not None:
        await running.alerts_task
    try:
        await asyncio.wait_for(running.worker_task, timeout=grace_seconds)
    except TimeoutError:
        # Rows still being sent keep their lease and are retried after it expires.
        log.warning(
            "deliveries still in flight after %ss; leaving them to the lease", grace_seconds
        )
    await close_transport(running.worker.transport)
    await asyncio.to_thread(running.store.dispose)


async def serve(config: Config) -> None:
    running = await start(config)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    log.info("relay for %s is running", config.relay.domain)
    await stop_requested.wait()
    log.info("stopping")
    await stop(running)
    log.info("stopped")
