"""Telling systemd how the daemon is doing (sd_notify), without libsystemd.

Owns the one datagram protocol systemd's Type=notify units listen on:
``READY=1`` once the relay listens, ``RELOADING=1``/``READY=1`` around a
SIGHUP reload, ``STOPPING=1`` when it begins to stop, and ``STATUS=...``
lines for `systemctl status`. Outside systemd ($NOTIFY_SOCKET unset) every
call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*fields: str) -> bool:
    """Send "FIELD=value" lines to systemd; True if there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket name
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as error:
        log.warning("cannot notify systemd at %s: %s", address, error.strerror)
        return False
    return True


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def stopping() -> bool:
    return notify("STOPPING=1")


def reloading() -> bool:
    return notify("RELOADING=1")
