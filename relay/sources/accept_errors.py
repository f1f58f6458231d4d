"""Running out of file descriptors: said once a minute, never a flood, on either event loop.

When the process runs out of file descriptors, asyncio's loop logs "accept()
out of system resource" with a traceback every time it retries accept(),
about once a second per listening socket; left alone it wrote hundreds of
megabytes in minutes. uvloop's (libuv's) says nothing at all: it accepts and
at once closes each waiting connection, so the operator would never know.
Both roads lead to the one limited line here: the loop's error handler
catches asyncio's, and a watch on the process's open descriptors sees
uvloop's.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("relay.sources.smtp")

# Fewer descriptors left than this is "out": the store, the log and the delivery
# client need a few of their own, and libuv keeps one in reserve for its trick.
DESCRIPTORS_IN_RESERVE = 8
_OPEN_DESCRIPTORS = "/proc/self/fd"


class AcceptErrorLimiter:
    """The event loop's error handler and the descriptor watch, saying it once a minute.

    Every other error the loop reports is passed on as it is.
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
        kind = type(context.get("exception")).__name__
        self._report("accept() failed: out of file descriptors or memory (%s)", kind)

    async def watch_descriptors(self, every: float = 1.0) -> None:
        """Until cancelled: report when fewer than DESCRIPTORS_IN_RESERVE are left."""
        while (counted := open_descriptors()) is not None:
            opened, limit = counted
            if limit - opened < DESCRIPTORS_IN_RESERVE:
                self._report(
                    "out of file descriptors: %d of %d open; new connections are closed"
                    " unanswered until some end",
                    opened,
                    limit,
                )
            await asyncio.sleep(every)

    def _report(self, line: str, *arguments: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._quiet += 1
            return
        log.error(f"{line}; %d more since the last", *arguments, self._quiet)
        self._last, self._quiet = now, 0


def open_descriptors() -> tuple[int, int] | None:
    """(open, the soft limit); None where neither can be known (no /proc, no limit)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        # A listing of a few hundred names in /proc: microseconds, nothing to wait for.
        opened = len(os.listdir(_OPEN_DESCRIPTORS))
    except OSError as error:
        if error.errno not in (errno.EMFILE, errno.ENFILE):
            return None
        opened = limit  # not even the listing could open one
    return None if limit == resource.RLIM_INFINITY else (opened, limit)
