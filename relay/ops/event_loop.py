"""The event loop `relay serve` runs on: uvloop unless ``[daemon] event_loop`` says asyncio.

uvloop (libuv underneath) does the loop's own work, the selector, the
transports, timers and callbacks, in C: at 1 KB x16 the daemon spends about a
seventh less CPU per message on it than on asyncio's pure-Python loop
(bench/RESULTS.md). Everything the relay runs on the loop, aiosmtpd's server
and STARTTLS, aiosmtplib's client, aioimaplib, signal handlers and threads
handing results back, uses only the public asyncio API, so either loop
carries it; ``event_loop = "asyncio"`` is the way back should a future
release of one of them not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from relay.settings import EventLoop

T = TypeVar("T")


def loop_factory(kind: EventLoop) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "uvloop":
        import uvloop  # imported here: the commands that never serve do not load it

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: EventLoop) -> T:
    """asyncio.run() on the given kind of loop."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)


def name_of(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio": what a running loop is, for the start-up log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
