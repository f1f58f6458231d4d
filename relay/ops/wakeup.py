"""Waking the running daemon when a command has queued mail, instead of waiting for its poll.

Owns a local datagram socket next to the pid file (``relay.pid`` ->
``relay.wake``): `relay serve` binds it and wakes its delivery worker on
any datagram; a command that queued mail (`relay approve`, `relay queue
retry`, `relay pair create`, ...) sends one byte after its commit. The
poll stays as the fallback: a command on another host, or a daemon that is
not running, costs nothing but the poll interval. A socket, not a signal,
so a stale pid file can never make a command signal an unrelated process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

QUEUED_MAIL = "relay_queued_mail"  # Session.info key: this unit of work put mail in the outbox
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its NUL


def wake_socket_path(pid_file: Path) -> Path:
    return pid_file.with_suffix(".wake")


def wake_daemon(pid_file: Path) -> bool:
    """Tell a daemon on this host that mail is queued; False if none listens."""
    path = wake_socket_path(pid_file)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"!", str(path))
    except OSError:  # no daemon, a full queue (it is already awake), a path too long
        return False
    return True


class WakeListener:
    """The daemon's end: calls on_wake for every datagram, on the event loop."""

    def __init__(self, pid_file: Path, on_wake: Callable[[], None]) -> None:
        self.path = wake_socket_path(pid_file)
        self.on_wake = on_wake
        self._socket: socket.socket | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        if len(str(self.path).encode()) > UNIX_PATH_MAX:
            log.warning("wake-up socket path too long (%s); commands wait for the poll", self.path)
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left by a daemon that died
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sock.bind(str(self.path))
        except OSError as error:
            sock.close()
            log.warning("cannot bind the wake-up socket %s: %s", self.path, error.strerror)
            return False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._read)
        self._socket = sock
        return True

    def _read(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._socket.recv(64):
                pass
        self.on_wake()

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._socket is None:
            return
        loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
