"""Where outbound mail goes: an SMTP smarthost (aiosmtplib) or Maildir folders.

A transport sends one message to one recipient with a given envelope sender
(several at once, up to its `parallel`) and says how it went by raising:
TemporaryFailure (try again later) or PermanentFailure (give up now).
Anything else it raises is treated as temporary by the delivery worker.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from relay.config import Config
from relay.delivery.smtp_transaction import NO_SMTPUTF8, NoSmtputf8, send_one
from relay.settings import SmarthostSettings


class DeliveryError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TemporaryFailure(DeliveryError):
    """The message may go through later."""


class PermanentFailure(DeliveryError):
    """The message will never go through as it is."""


class Transport(Protocol):
    parallel: int  # how many sends the worker may have in flight at once

    async def send(self, envelope_from: str, recipient: str, content: bytes, key: str = "") -> None:
        """key names the outbox row: the same key is the same mail (a retry, not a new one)."""
        ...

    async def close(self) -> None: ...


class SmtpTransport:
    """Hands mail to a smarthost over up to `connections` kept-open sessions.

    A session is reused for message after message (aiosmtplib), so a message
    costs one SMTP transaction (relay.delivery.smtp_transaction), not a
    connection and a greeting. A refused MAIL, RCPT or DATA is followed by
    RSET, and a session that takes it stays open for the next message; a
    session that fails otherwise is dropped and a new one opened.
    """

    def __init__(self, settings: SmarthostSettings, local_hostname: str) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self.parallel = max(1, settings.connections)
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(self.parallel)

    def _new_client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        context = None
        if settings.tls != "none":
            context = ssl.create_default_context(cafile=settings.ca_file or None)
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            local_hostname=self.local_hostname,
            timeout=settings.timeout.total_seconds(),
            use_tls=settings.tls == "implicit",
            start_tls=settings.tls == "starttls",
            tls_context=context,
            username=settings.username or None,
            password=settings.password or None,
        )

    async def send(self, envelope_from: str, recipient: str, content: bytes, key: str = "") -> None:
        async with self._slots:  # one SMTP transaction at a time on each session
            client = self._idle.pop() if self._idle else self._new_client()
            failure: DeliveryError | None = None
            fit = False
            try:
                failure, fit = await self._send_on(client, envelope_from, recipient, content)
            finally:
                if fit and client.is_connected:
                    self._idle.append(client)
                else:
                    client.close()
            if failure is not None:
                raise failure

    async def _send_on(
        self, client: aiosmtplib.SMTP, envelope_from: str, recipient: str, content: bytes
    ) -> tuple[DeliveryError | None, bool]:
        """Send on client: (how it failed, or None; whether the session is fit for more)."""
        try:
            if not client.is_connected:
                await client.connect()
        except aiosmtplib.SMTPResponseException as error:  # a refusing greeting, login
            return _failure(error.code, error.message), False
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return _unreachable(error), False
        try:
            await send_one(client, envelope_from, recipient, content)
        except NoSmtputf8:
            return PermanentFailure(NO_SMTPUTF8), True  # nothing was started: no RSET needed
        except aiosmtplib.SMTPResponseException as error:
            # A refused MAIL, RCPT or DATA: RSET (as sendmail() does) clears the envelope,
            # and a session that takes it is as good as new.
            return _failure(error.code, error.message), await _reset(client)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return _unreachable(error), False
        return None, True

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


def _failure(code: int, message: str) -> DeliveryError:
    detail = f"{code} {message}".strip()
    return PermanentFailure(detail) if code >= 500 else TemporaryFailure(detail)


def _unreachable(error: Exception) -> DeliveryError:
    return TemporaryFailure(f"smarthost unreachable: {type(error).__name__}")


async def _reset(client: aiosmtplib.SMTP) -> bool:
    try:
        if client.is_connected:
            await client.rset()
            return True
    except (aiosmtplib.SMTPException, OSError):
        pass
    return False


_UNSAFE = re.compile(r"[^a-z0-9@._+-]")


class MaildirTransport:
    """Delivers into one Maildir per recipient under a folder: mail to see without a server.

    Idempotent: the file is named after the outbox row (key), so a retry after a
    crash that came after the write but before the delivery was recorded finds
    the copy (in new/, or in cur/ once a client has seen it) instead of adding a
    second one.
    """

    parallel = 4

    def __init__(self, folder: Path, domain: str = "relay") -> None:
        self.folder = folder
        self.domain = _UNSAFE.sub("_", domain.lower())

    def folder_for(self, recipient: str) -> Path:
        return self.folder / _UNSAFE.sub("_", recipient.lower())

    async def send(self, envelope_from: str, recipient: str, content: bytes, key: str = "") -> None:
        try:
            await asyncio.to_thread(self._deliver, envelope_from, recipient, content, key)
        except OSError as error:
            raise TemporaryFailure(f"cannot write Maildir: {error.strerror}") from None

    def _deliver(self, envelope_from: str, recipient: str, content: bytes, key: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.folder_for(recipient), create=True)
        data = f"Return-Path: <{envelope_from}>\n".encode() + content.replace(b"\r\n", b"\n")
        if not key:
            box.add(data)
            return
        home = self.folder_for(recipient)
        name = f"{_UNSAFE.sub('_', key)}.{self.domain}"
        if (home / "new" / name).exists() or _seen(home / "cur", name):
            return  # delivered before the crash; this is the retry
        temporary = home / "tmp" / name
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, home / "new" / name)

    async def close(self) -> None:
        return None


def _seen(cur: Path, name: str) -> bool:
    """A client moves a read message to cur/ and appends ":2,FLAGS" to its name."""
    with os.scandir(cur) as entries:
        return any(entry.name == name or entry.name.startswith(name + ":") for entry in entries)


def make_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp":
        return SmtpTransport(config.smarthost, local_hostname=config.relay.domain)
    return MaildirTransport(config.delivery.maildir, config.relay.domain)
