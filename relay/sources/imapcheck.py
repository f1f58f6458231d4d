"""`relay imap check`: try the [imap] mailbox without taking anything from it.

Owns the operator's dry run of the IMAP source: log in as the source would,
list the folders (and say which of the processed and refused folders are
missing), and count the messages waiting in the mailbox and how many of them
were already taken (those will only be moved). Nothing is moved or stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from relay.config import Config
from relay.errors import ImapError
from relay.sources.imapclient import connect, list_folders, mailbox_key, open_mailbox, waiting_uids
from relay.store.db import Store
from relay.store.models import ImapTaken

# The capabilities that change what the source does.
INTERESTING_CAPABILITIES = ("IDLE", "MOVE", "UIDPLUS")


@dataclass(frozen=True)
class CheckReport:
    server: str
    tls: str
    capabilities: tuple[str, ...]
    folders: tuple[str, ...]
    missing_folders: tuple[str, ...]
    waiting: int
    already_taken: int  # of the waiting ones: will only be moved


async def check(config: Config, open_store: Callable[[], Store]) -> CheckReport:
    """Log in, list the folders, count what waits in the mailbox (changes nothing).

    The database is opened only after the IMAP part, whose problems are the ones to show.
    """
    settings = config.imap
    if not settings.enabled:
        raise ImapError(f"{config.source}: no [imap] section (or no [imap] host)")
    connection = await connect(settings)
    try:
        folders = await list_folders(connection)
        uidvalidity = await open_mailbox(connection, settings.mailbox)
        uids = await waiting_uids(connection)
    finally:
        await connection.close()
    already = await asyncio.to_thread(
        _count_taken, open_store, mailbox_key(settings), uidvalidity, uids
    )
    wanted = (settings.processed_folder, settings.refused_folder)
    return CheckReport(
        server=f"{settings.host}:{settings.effective_port}",
        tls=settings.tls,
        capabilities=tuple(c for c in INTERESTING_CAPABILITIES if connection.has(c)),
        folders=tuple(folders),
        missing_folders=tuple(folder for folder in wanted if folder not in folders),
        waiting=len(uids),
        already_taken=already,
    )


def _count_taken(
    open_store: Callable[[], Store], mailbox: str, uidvalidity: int, uids: list[int]
) -> int:
    if not uids:
        return 0
    with open_store().session() as session:
        return int(
            session.scalar(
                select(func.count(ImapTaken.id)).where(
                    ImapTaken.mailbox == mailbox,
                    ImapTaken.uidvalidity == uidvalidity,
                    ImapTaken.uid.in_(uids),
                )
            )
            or 0
        )
