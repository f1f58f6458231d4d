"""Where outbound mail goes: an SMTP smarthost (aiosmtplib) or Maildir folders.

A transport sends one message to one recipient with a given envelope sender
and says how it went by raising: TemporaryFailure (try again later) or
PermanentFailure (give up now). Anything else it raises is treated as
temporary by the delivery worker.
"""

from __future__ import annotations

import asyncio
import mailbox
import re
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from relay.config import Config
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
    async def send(self, envelope_from: str, recipient: str, content: bytes) -> None: ...

    async def close(self) -> None: ...


class SmtpTransport:
    """Hands mail to a smarthost over one kept-open connection, reconnecting on failure."""

    def __init__(self, settings: SmarthostSettings, local_hostname: str) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

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

    async def send(self, envelope_from: str, recipient: str, content: bytes) -> None:
        async with self._lock:  # one SMTP transaction at a time on the shared connection
            try:
                client = await self._connected()
                errors, _ = await client.sendmail(envelope_from, [recipient], content)
            except aiosmtplib.SMTPRecipientsRefused as refused:
                await self._drop_connection()
                self._raise_for(refused.recipients[0].code, refused.recipients[0].message)
            except aiosmtplib.SMTPResponseException as error:
                if error.code >= 500:
                    await self._reset()
                else:
                    await self._drop_connection()
                self._raise_for(error.code, error.message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                await self._drop_connection()
                raise TemporaryFailure(f"smarthost unreachable: {type(error).__name__}") from None
            if errors:
                response = next(iter(errors.values()))
                self._raise_for(response.code, response.message)

    @staticmethod
    def _raise_for(code: int, message: str) -> None:
        detail = f"{code} {message}".strip()
        if code >= 500:
            raise PermanentFailure(detail)
        raise TemporaryFailure(detail)

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            self._client = self._new_client()
            await self._client.connect()
        return self._client

    async def _reset(self) -> None:
        try:
            if self._client is not None and self._client.is_connected:
                await self._client.rset()
        except aiosmtplib.SMTPException:
            await self._drop_connection()

    async def _drop_connection(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


_UNSAFE = re.compile(r"[^a-z0-9@._+-]")


class MaildirTransport:
    """Delivers into one Maildir per recipient under a folder: mail to see without a server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def folder_for(self, recipient: str) -> Path:
        return self.folder / _UNSAFE.sub("_", recipient.lower())

    async def send(self, envelope_from: str, recipient: str, content: bytes) -> None:
        try:
            await asyncio.to_thread(self._deliver, envelope_from, recipient, content)
        except OSError as error:
            raise TemporaryFailure(f"cannot write Maildir: {error.strerror}") from None

    def _deliver(self, envelope_from: str, recipient: str, content: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.folder_for(recipient), create=True)
        return_path = f"Return-Path: <{envelope_from}>\n".encode()
        box.add(return_path + content.replace(b"\r\n", b"\n"))

    async def close(self) -> None:
        return None


def make_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp":
        return SmtpTransport(config.smarthost, local_hostname=config.relay.domain)
    return MaildirTransport(config.delivery.maildir)
