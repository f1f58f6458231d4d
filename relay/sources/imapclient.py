"""The IMAP client side of the IMAP source: connect, log in, and the few commands it needs.

Owns talking to the server through aioimaplib: implicit TLS, STARTTLS (which
aioimaplib lacks: the command plus asyncio's start_tls) or plain; a private CA;
and a bound on every call, because aioimaplib waits forever for a reply that a
dropped connection will never send. A Connection also knows when the server
has hung up, so a waiter can be woken at once. relay/sources/imap.py decides
what to do with the mailbox; this module only speaks IMAP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from aioimaplib import aioimaplib

from relay.errors import ImapError
from relay.settings import ImapSettings

T = TypeVar("T")

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_LIST_LINE = re.compile(
    rb'^\((?P<flags>[^)]*)\) (?P<delimiter>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$'
)


# -- connecting -----------------------------------------------------------------


def mailbox_key(settings: ImapSettings) -> str:
    """The name ImapTaken rows use for the mailbox: user@host/mailbox."""
    return f"{settings.user}@{settings.host}/{settings.mailbox}"


def quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (names may hold spaces)."""
    return str(aioimaplib.quoted(name))


async def bounded(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds)
    except TimeoutError:
        raise ImapError(f"no answer to {what} within {seconds:g}s") from None


def check_ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes))
        raise ImapError(f"{what} failed: {response.result} {text.decode(errors='replace')}")
    return response


def ssl_context(settings: ImapSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ImapError(f"[imap] ca_file {settings.ca_file}: {error}") from None
    return context


@dataclass
class Connection:
    """A logged-in aioimaplib client and an event set when the server hangs up."""

    client: Any
    lost: asyncio.Event
    timeout: float

    def has(self, capability: str) -> bool:
        return bool(self.client.has_capability(capability))

    async def call(self, awaitable: Awaitable[T], what: str, factor: float = 1) -> T:
        if self.lost.is_set():
            raise ImapError("the server closed the connection")
        return await bounded(awaitable, self.timeout * factor, what)

    async def close(self) -> None:
        """Log out politely if the server still listens; drop the connection regardless."""
        with contextlib.suppress(Exception):
            if not self.lost.is_set() and self.client.get_state() != "LOGOUT":
                await bounded(self.client.logout(), min(self.timeout, 5.0), "LOGOUT")
        transport = self.client.protocol.transport
        if transport is not None:
            transport.close()
        for task in list(self.client.tasks) + list(self.client.protocol.tasks):
            task.cancel()


async def connect(settings: ImapSettings) -> Connection:
    """Connect, secure the connection as configured, and log in; ImapError on any failure."""
    timeout = settings.timeout.total_seconds()
    host, port = settings.host, settings.effective_port
    where = f"{host}:{port}"
    lost = asyncio.Event()
    if settings.tls == "implicit":
        client = aioimaplib.IMAP4_SSL(
            host, port, timeout=timeout, ssl_context=ssl_context(settings)
        )
    else:
        client = aioimaplib.IMAP4(host, port, timeout=timeout)
    # IMAP4_SSL takes no conn_lost_cb; the protocol object is the same either way.
    client.protocol.conn_lost_cb = lambda _error: lost.set()
    connection = Connection(client, lost, timeout)
    try:
        try:
            await client.wait_hello_from_server()
        except TimeoutError:
            raise ImapError(f"{where}: no greeting within {timeout:g}s") from None
        except (OSError, aioimaplib.AioImapException) as error:
            raise ImapError(f"{where}: cannot connect: {error}") from None
        if settings.tls == "starttls":
            await _starttls(connection, ssl_context(settings), host)
        response = await connection.call(client.login(settings.user, settings.password), "LOGIN")
        if response.result != "OK":
            raise ImapError(f"{where}: login as {settings.user} refused")
        # Servers may widen their capabilities after login (MOVE, UIDPLUS ...).
        await connection.call(client.protocol.capability(), "CAPABILITY")
    except BaseException:
        await connection.close()
        raise
    return connection


async def _starttls(connection: Connection, context: ssl.SSLContext, host: str) -> None:
    """aioimaplib has no STARTTLS; the command plus asyncio's start_tls is all it takes."""
    if not connection.has("STARTTLS"):
        raise ImapError(f"{host}: the server does not offer STARTTLS")
    protocol = connection.client.protocol
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    check_ok(await connection.call(protocol.execute(command), "STARTTLS"), "STARTTLS")
    loop = asyncio.get_running_loop()
    try:
        protocol.transport = await connection.call(
            loop.start_tls(protocol.transport, protocol, context, server_hostname=host),
            "the TLS handshake",
        )
    except (OSError, ssl.SSLError) as error:
        raise ImapError(f"{host}: TLS failed: {error}") from None
    # RFC 3501: what the server said before TLS must be forgotten.
    await connection.call(protocol.capability(), "CAPABILITY")


async def list_folders(connection: Connection) -> list[str]:
    response = check_ok(await connection.call(connection.client.list('""', "*"), "LIST"), "LIST")
    folders = []
    for line in response.lines[:-1]:
        match = _LIST_LINE.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
        if match is None:
            continue
        name = match.group("name").decode("utf-8", errors="replace")
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        folders.append(name)
    return folders


async def open_mailbox(connection: Connection, mailbox: str) -> int:
    """SELECT the mailbox; its UIDVALIDITY."""
    client = connection.client
    response = check_ok(await connection.call(client.select(quoted(mailbox)), "SELECT"), "SELECT")
    for line in response.lines:
        match = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
        if match:
            return int(match.group(1))
    raise ImapError(f"the server named no UIDVALIDITY for {mailbox}")


async def waiting_uids(connection: Connection) -> list[int]:
    """The UIDs in the selected mailbox, oldest first (deleted ones are on their way out)."""
    response = await connection.call(
        connection.client.uid_search("UNDELETED", charset=None), "UID SEARCH"
    )
    check_ok(response, "UID SEARCH")
    words = b" ".join(line for line in response.lines[:-1] if isinstance(line, bytes)).split()
    return sorted({int(word) for word in words if word.isdigit()})
