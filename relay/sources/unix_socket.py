"""The inbound server's Unix socket: created with the permissions an MTA needs, removed on stop.

Postfix's lmtp client (``lmtp:unix:/path``) runs as the unprivileged
``postfix`` user, so the socket must be writable by it: ``[smtp] socket_mode``
(default 0660) and ``socket_group`` (e.g. "postfix", a group the relay's user
belongs to) set that. A socket left behind by a crash is replaced; any other
file at the path, or a socket another process still listens on, is an
error, never taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import socket
import stat
from collections.abc import Callable

from relay.errors import ConfigError
from relay.settings import SmtpSettings


async def serve(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    settings: SmtpSettings,
) -> asyncio.Server:
    path = settings.socket
    gid = _group_id(settings.socket_group)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ConfigError(f"[smtp] socket {path}: exists and is not a socket")
        if _answers(path):
            raise ConfigError(f"[smtp] socket {path}: in use (is another relay running?)")
    server: asyncio.Server | None = None
    try:
        server = await loop.create_unix_server(protocol_factory, path=path)
        os.chmod(path, int(settings.socket_mode, 8))
        if gid is not None:
            os.chown(path, -1, gid)
    except OSError as error:
        if server is not None:
            server.close()
        raise ConfigError(f"[smtp] socket {path}: cannot listen: {error.strerror}") from None
    return server


def _answers(path: str) -> bool:
    """Whether something listens on the socket (a live one must not be taken over)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False  # refused: left behind by a process that is gone
    return True


def remove(path: str) -> None:
    """Remove the socket file (asyncio leaves it behind on Python < 3.13)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def _group_id(name: str) -> int | None:
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(f"[smtp] socket_group {name!r}: no such group") from None
