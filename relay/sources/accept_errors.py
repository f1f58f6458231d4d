"""Keeping asyncio's "accept() out of system resource" error from flooding the log.

When the process runs out of file descriptors, asyncio logs that error with
a traceback every time it retries accept(), about once a second per
listening socket; left alone it wrote hundreds of megabytes in minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("relay.sources.smtp")


class AcceptErrorLimiter:
    """The event loop's error handler, saying "accept() out of system resource" once a minute.

    asyncio logs that error with a traceback each time it retries accept()
    while the process is out of file descriptors, which filled disks at
    hundreds of megabytes a minute; every other error is passed on as it is.
    """

    def __init__(self, passed_on: Callable[[dict[str, Any]], object], every: float = 60.0) -> None:
        self.passed_on = passed_on
        self.every = every
        self._last = -every
        self._quiet = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "out of system resource" not in str(context.get("message", "")):
            self.passed_on(context)
            return
        now = time.monotonic()
        if now - self._last < self.every:
            self._quiet += 1
            return
        log.error(
            "accept() failed: out of file descriptors or memory (%s); %d more since the last",
            type(context.get("exception")).__name__,
            self._quiet,
        )
        self._last, self._quiet = now, 0
