"""The IMAP source: read a hosted mailbox and treat each message as if SMTP had brought it.

Owns everything between an IMAP server and intake.accept(): logging in (implicit
TLS, STARTTLS or plain), finding which pair a message is for (the first pair or
bounce address in Delivered-To, X-Original-To, To, Cc), handing it to the same
intake.accept() the SMTP source uses, and moving it out of the mailbox only
after the commit: to the processed folder, or, when intake refused it (a
stranger, an unknown pair...), to the refused folder. No bounce is sent for a
refusal: the sender never talked to us, the mailbox provider did.

No message is taken twice. Each one is known by (mailbox, UIDVALIDITY, UID),
which RFC 3501 promises is never reused; an ImapTaken row is written in the
same commit as the stored message (a refusal stores nothing else, so its row
is its own commit). A message whose row exists is only moved: that covers a
restart, a crash between the commit and the move, and a second relay process
reading the same mailbox (the unique key makes the slower one roll back).

Waiting: IDLE when the server offers it, polling otherwise. aioimaplib waits
forever for a reply that a dropped connection will never send, so every call
here is bounded by [imap] timeout, every IDLE wait by [imap] idle_timeout, and
a lost connection wakes the waiter at once. Any failure ends the connection;
run() reconnects with exponential backoff until the relay stops. Speaking
IMAP itself (TLS, login, bounded commands) lives in relay/sources/imapclient.py,
and `relay imap check` in relay/sources/imapcheck.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.utils import getaddresses

from aioimaplib import aioimaplib
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.config import Config
from relay.errors import ImapError
from relay.intake import Incoming, Intake
from relay.mail import replies
from relay.mail.addresses import (
    BOUNCE_PREFIX,
    CHECKIN_PREFIX,
    OFFER_PREFIX,
    UNSUBSCRIBE_PREFIX,
    normalise,
    split,
    token_of,
)
from relay.mail.replies import Reply
from relay.sources.imapclient import (
    Connection,
    check_ok,
    connect,
    list_folders,
    mailbox_key,
    open_mailbox,
    quoted,
    waiting_uids,
)
from relay.store.db import Store
from relay.store.models import ImapTaken

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
RETRY_SECONDS = 60.0  # before a message whose intake failed is tried again
FETCH_TIMEOUT_FACTOR = 10  # a whole message may take longer than one short command
# Where the pair address of a message may be found, in the order they are trusted.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


# -- which pair, which sender -------------------------------------------------------


# Replies to the relay's own signed addresses come through the mailbox too.
SIGNED_PREFIXES = (BOUNCE_PREFIX, CHECKIN_PREFIX, OFFER_PREFIX, UNSUBSCRIBE_PREFIX)


def relay_recipient(raw: bytes, domain: str) -> str | None:
    """The first pair or signed (bounce, check-in, offer...) address in Delivered-To,
    X-Original-To, To, Cc."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    for header in RECIPIENT_HEADERS:
        values = [str(value) for value in message.get_all(header, [])]
        for _, address in getaddresses(values):
            bare = normalise(address)
            local, address_domain = split(bare)
            if address_domain != domain.lower():
                continue
            if token_of(bare, domain) is not None or local.startswith(SIGNED_PREFIXES):
                return bare
    return None


def envelope_sender(raw: bytes) -> str:
    """Return-Path as the mailbox provider recorded MAIL FROM; without it, From stands in.

    Intake decides who is writing by From either way; the envelope sender only
    matters for telling a bounce (Return-Path: <>) from a participant's mail.
    """
    message = email.message_from_bytes(raw, policy=policy.compat32)
    return_path = message.get("Return-Path")
    if return_path is not None:
        text = str(return_path).strip()
        if text in ("<>", ""):
            return "<>"
        return normalise(text) or text
    senders = getaddresses([str(value) for value in message.get_all("From", [])])
    # No From at all: intake refuses with the From rule, not as a bounce.
    return normalise(senders[0][1]) if senders and senders[0][1] else "unknown@sender.invalid"


# -- the source ---------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """What became of one message: where it goes, and whether the outbox has new work."""

    refused: bool
    reply: str
    queued: bool = False


class ImapSource:
    """Reads [imap] mailbox until the relay stops."""

    def __init__(
        self,
        config: Config,
        store: Store,
        intake: Intake,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.settings = config.imap
        self.store = store
        self.intake = intake
        self.on_queued = on_queued
        self.mailbox = mailbox_key(self.settings)
        # UIDs whose intake failed, with when to try again: one message that cannot be
        # taken (a database error, a bug) must not hold up the ones behind it.
        self._retry_at: dict[tuple[int, int], float] = {}

    # -- the loop

    async def run(self, stopping: asyncio.Event) -> None:
        delay = FIRST_BACKOFF_SECONDS
        while not stopping.is_set():
            connection: Connection | None = None
            try:
                connection = await connect(self.settings)
                uidvalidity = await self._prepare(connection)
                log.info("IMAP: reading %s on %s", self.settings.mailbox, self.settings.host)
                delay = FIRST_BACKOFF_SECONDS
                await self._watch(connection, uidvalidity, stopping)
            except (ImapError, OSError, aioimaplib.AioImapException) as error:
                log.warning("IMAP: %s; reconnecting in %gs", error, delay)
            except Exception:
                # The database, most likely: the message stays in the mailbox for next time.
                log.exception("IMAP: taking mail failed; reconnecting in %gs", delay)
            finally:
                if connection is not None:
                    await connection.close()
            if stopping.is_set():
                break
            await _sleep_unless(stopping, delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        log.info("IMAP: stopped")

    async def _prepare(self, connection: Connection) -> int:
        existing = set(await list_folders(connection))
        for folder in (self.settings.processed_folder, self.settings.refused_folder):
            if folder not in existing:
                response = await connection.call(connection.client.create(quoted(folder)), "CREATE")
                check_ok(response, f"creating the folder {folder}")
                log.info("IMAP: created the folder %s", folder)
        return await open_mailbox(connection, self.settings.mailbox)

    async def _watch(
        self, connection: Connection, uidvalidity: int, stopping: asyncio.Event
    ) -> None:
        use_idle = self.settings.idle and connection.has("IDLE")
        while not stopping.is_set():
            for uid in await waiting_uids(connection):
                if stopping.is_set():
                    return
                if self._retry_at.get((uidvalidity, uid), 0.0) > time.monotonic():
                    continue
                await self._handle(connection, uidvalidity, uid)
            if stopping.is_set():
                return
            if use_idle:
                await self._idle(connection, stopping)
            else:
                await _sleep_unless(stopping, self.settings.poll_interval.total_seconds())
                # Asks the server for news; also notices a connection that died quietly.
                await connection.call(connection.client.noop(), "NOOP")

    async def _idle(self, connection: Connection, stopping: asyncio.Event) -> None:
        """Wait until the server reports a change, idle_timeout passes, or the relay stops."""
        client = connection.client
        limit = self.settings.idle_timeout.total_seconds()
        idle = await connection.call(client.idle_start(timeout=limit), "IDLE")
        waits = {
            asyncio.ensure_future(client.wait_server_push(timeout=limit + connection.timeout)),
            asyncio.ensure_future(stopping.wait()),
            asyncio.ensure_future(connection.lost.wait()),
        }
        try:
            done, _ = await asyncio.wait(
                waits, timeout=limit + 2 * connection.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()
        pushed = [
            line
            for each in done
            if not each.cancelled() and each.exception() is None and isinstance(each.result(), list)
            for line in each.result()
        ]
        if connection.lost.is_set() or any(
            isinstance(line, bytes) and line.startswith(b"BYE") for line in pushed
        ):
            idle.cancel()
            raise ImapError("the server ended the session")
        client.idle_done()
        try:
            await connection.call(asyncio.shield(idle), "DONE (end of IDLE)")
        finally:
            idle.cancel()

    async def _handle(self, connection: Connection, uidvalidity: int, uid: int) -> None:
        taken = await asyncio.to_thread(self.already_taken, uidvalidity, uid)
        if taken is None:
            raw = await self._fetch(connection, uid)
            if raw is None:  # gone meanwhile (another reader moved it)
                return
            try:
                taken = await asyncio.to_thread(self.take, uidvalidity, uid, raw)
            except Exception:
                # Left in the mailbox, as a 451 leaves mail with the sending server.
                log.exception(
                    "IMAP: UID %s could not be taken; retrying in %gs", uid, RETRY_SECONDS
                )
                self._retry_at[(uidvalidity, uid)] = time.monotonic() + RETRY_SECONDS
                return
            self._retry_at.pop((uidvalidity, uid), None)
            if taken.queued:
                self.on_queued()
        else:
            log.info("IMAP: UID %s was taken before; only moving it", uid)
        folder = self.settings.refused_folder if taken.refused else self.settings.processed_folder
        await self._move(connection, uid, folder)

    async def _fetch(self, connection: Connection, uid: int) -> bytes | None:
        response = await connection.call(
            connection.client.uid("fetch", str(uid), "(BODY.PEEK[])"),
            f"UID FETCH {uid}",
            factor=FETCH_TIMEOUT_FACTOR,
        )
        check_ok(response, f"fetching UID {uid}")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def _move(self, connection: Connection, uid: int, folder: str) -> None:
        client, target, what = connection.client, quoted(folder), f"moving UID {uid} to {folder}"
        if connection.has("MOVE"):
            check_ok(await connection.call(client.uid("move", str(uid), target), "UID MOVE"), what)
            return
        # RFC 6851's fallback: copy, flag \Deleted, expunge.
        check_ok(await connection.call(client.uid("copy", str(uid), target), "UID COPY"), what)
        response = await connection.call(
            client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE"
        )
        check_ok(response, what)
        if connection.has("UIDPLUS"):
            response = await connection.call(client.uid("expunge", str(uid)), "UID EXPUNGE")
        else:  # expunges every \Deleted message, which a mailbox read by the relay may do
            response = await connection.call(client.expunge(), "EXPUNGE")
        check_ok(response, what)

    # -- the database side (synchronous: run in a worker thread)

    def already_taken(self, uidvalidity: int, uid: int) -> Taken | None:
        with self.store.read_session() as session:
            row = session.scalar(
                select(ImapTaken).where(
                    ImapTaken.mailbox == self.mailbox,
                    ImapTaken.uidvalidity == uidvalidity,
                    ImapTaken.uid == uid,
                )
            )
            return None if row is None else Taken(row.refused, row.reply)

    def take(self, uidvalidity: int, uid: int, raw: bytes) -> Taken:
        """Hand one message to intake and record it as taken, in intake's own commit."""
        recipient = relay_recipient(raw, self.config.relay.domain)
        if recipient is None:
            return self._refuse(uidvalidity, uid, replies.UNKNOWN_PAIR, "no pair address found")
        incoming = Incoming(
            raw=raw,
            envelope_from=envelope_sender(raw),
            recipients=(recipient,),
            source="imap",
            peer=self.settings.host,
        )
        recorded: list[Reply] = []

        def record(session: Session, reply: Reply, message_ids: tuple[int, ...]) -> None:
            session.add(self._row(uidvalidity, uid, reply, message_ids, refused=False))
            recorded.append(reply)

        try:
            outcome = self.intake.accept(incoming, in_same_commit=record)
        except IntegrityError:
            # Another relay process took it first; its row says where the message goes.
            earlier = self.already_taken(uidvalidity, uid)
            if earlier is None:
                raise
            return earlier
        if not recorded:  # refused, or nothing of it stored (a bounce): nothing else to join
            if not outcome.reply.is_success:
                return self._refuse(uidvalidity, uid, outcome.reply, "refused")
            self._record_alone(uidvalidity, uid, outcome.reply)
        ids = ",".join(map(str, outcome.message_ids)) or "-"
        log.info("IMAP: UID %s -> %s (messages %s)", uid, outcome.reply, ids)
        return Taken(refused=False, reply=str(outcome.reply), queued=outcome.queued)

    def _refuse(self, uidvalidity: int, uid: int, reply: Reply, why: str) -> Taken:
        # No bounce: the sender wrote to the mailbox provider, who accepted it long ago.
        log.info("IMAP: UID %s %s: %s; to %s", uid, why, reply, self.settings.refused_folder)
        return self._record_alone(uidvalidity, uid, reply)

    def _record_alone(self, uidvalidity: int, uid: int, reply: Reply) -> Taken:
        try:
            with self.store.session() as session:
                session.add(self._row(uidvalidity, uid, reply, (), refused=not reply.is_success))
        except IntegrityError:
            earlier = self.already_taken(uidvalidity, uid)
            if earlier is None:
                raise
            return earlier
        return Taken(refused=not reply.is_success, reply=str(reply))

    def _row(
        self,
        uidvalidity: int,
        uid: int,
        reply: Reply,
        message_ids: Sequence[int],
        *,
        refused: bool,
    ) -> ImapTaken:
        # refused means nothing was stored: a message the rules rejected is in the
        # transcript (a moderator may look at it), so it goes to the processed folder.
        return ImapTaken(
            mailbox=self.mailbox,
            uidvalidity=uidvalidity,
            uid=uid,
            refused=refused,
            reply=str(reply)[:200],
            message_ids=",".join(map(str, message_ids))[:200],
        )


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
