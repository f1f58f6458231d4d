"""The inbound SMTP server: an aiosmtpd handler plus the server's life cycle.

The handler is the smallest contract aiosmtpd needs: RCPT asks intake whether
the address is a live pair address; DATA hands the bytes to intake.accept()
in a worker thread and answers with its reply only after the commit. An
internal error is 451 4.3.0, never a 5xx and never the exception's text.

On stop, new sessions get 421 and so does a new MAIL in an open session;
DATA already under way (still being received, or being committed) is allowed
to finish and commit and gets its 250; then the remaining sessions are closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from relay.config import Config
from relay.errors import ConfigError
from relay.intake import Incoming, Intake, Outcome
from relay.mail import replies
from relay.sources import unix_socket

log = logging.getLogger(__name__)

# aiosmtpd words some refusals itself; these give them our numbered replies.
_LIBRARY_REPLIES = {
    "552 ": str(replies.TOO_BIG),
    "500 Line too long": str(replies.LINE_TOO_LONG),
}


class RelayHandler:
    source = "smtp"  # what intake records as the message's source

    def __init__(
        self,
        intake: Intake,
        max_recipients: int,
        on_queued: Callable[[], None] = lambda: None,
        on_outcome: Callable[[Outcome, float], None] = lambda outcome, seconds: None,
    ) -> None:
        self.intake = intake
        self.max_recipients = max_recipients
        self.on_queued = on_queued
        self.on_outcome = on_outcome
        self.data_in_progress = 0
        self.idle = asyncio.Event()  # set while no DATA is being committed
        self.idle.set()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return str(replies.TOO_MANY_RECIPIENTS)
        try:
            reply = await asyncio.to_thread(self.intake.check_recipient, address)
        except Exception:
            log.exception("RCPT check failed")
            return str(replies.TEMPORARY_FAILURE)
        if reply.is_success:
            envelope.rcpt_tos.append(address)
        return str(reply)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.accept(session, envelope, tuple(envelope.rcpt_tos))

    async def accept(
        self, session: Session, envelope: Envelope, recipients: tuple[str, ...]
    ) -> str:
        """Hand the message for these recipients to intake; its reply, after the commit."""
        started = time.perf_counter()
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        incoming = Incoming(
            raw=bytes(envelope.original_content or b""),
            envelope_from=envelope.mail_from or "",
            recipients=recipients,
            source=self.source,
            peer=peer,
        )
        self.data_in_progress += 1
        self.idle.clear()
        try:
            outcome = await asyncio.to_thread(self.intake.accept, incoming)
        except Exception:
            log.exception("intake failed; the client will retry")
            return str(replies.TEMPORARY_FAILURE)
        finally:
            self.data_in_progress -= 1
            if not self.data_in_progress:
                self.idle.set()
        if outcome.queued:
            self.on_queued()
        self.on_outcome(outcome, time.perf_counter() - started)
        return str(outcome.reply)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        return str(replies.TEMPORARY_FAILURE)


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP with our reply texts and a 421 greeting while stopping."""

    def __init__(self, handler: RelayHandler, gate: SmtpServer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.gate = gate

    async def push(self, status: str) -> None:  # type: ignore[override]
        for prefix, ours in _LIBRARY_REPLIES.items():
            if status.startswith(prefix):
                status = ours
        await super().push(status)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.gate.closing:  # RFC 5321 4.1.1.4/4.2.2: 421 to any command, then close
            await self.push(str(replies.SHUTTING_DOWN))
            if self.transport is not None:
                self.transport.close()
            return
        await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # Counted from the DATA command on, so a stop waits for a message still being
        # received as well as for one being committed.
        self.gate.data_started()
        try:
            await super().smtp_DATA(arg)
        finally:
            self.gate.data_ended()

    async def _handle_client(self) -> None:
        # aiosmtpd has no public hook before the greeting; this is the one place to say 421.
        if self.gate.closing:
            await self.push(str(replies.SHUTTING_DOWN))
            if self.transport is not None:
                self.transport.close()
            return
        self.gate.sessions.add(self)
        try:
            await super()._handle_client()
        finally:
            self.gate.sessions.discard(self)


class SmtpServer:
    """Listens on [smtp] host:port (or a Unix socket) until stopped.

    session_class is the protocol spoken there: RelaySMTP, or relay.sources.lmtp's
    RelayLMTP (relay.sources.listener picks one by [smtp] protocol).
    """

    def __init__(
        self,
        config: Config,
        handler: RelayHandler,
        session_class: type[RelaySMTP] = RelaySMTP,
    ) -> None:
        self.config = config
        self.handler = handler
        self.session_class = session_class
        self.closing = False
        self.sessions: set[RelaySMTP] = set()
        self._server: asyncio.Server | None = None
        self._tls = self._tls_context()
        self._data_sessions = 0
        self._quiet = asyncio.Event()  # set while no session is in DATA
        self._quiet.set()

    def data_started(self) -> None:
        self._data_sessions += 1
        self._quiet.clear()

    def data_ended(self) -> None:
        self._data_sessions -= 1
        if not self._data_sessions:
            self._quiet.set()

    def _protocol(self) -> RelaySMTP:
        return self.session_class(
            self.handler,
            self,
            hostname=self.config.smtp.hostname or self.config.relay.domain,
            data_size_limit=self.config.relay.max_message_size,
            enable_SMTPUTF8=True,
            ident="mentor-relay",
            tls_context=self._tls,
            require_starttls=self.config.smtp.require_starttls,
        )

    def _tls_context(self) -> ssl.SSLContext | None:
        settings, folder = self.config.smtp, self.config.source.parent
        if not settings.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(folder / settings.tls_cert, folder / settings.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"{self.config.source}: [smtp] tls_cert/tls_key cannot be loaded: {error}"
            ) from None
        return context

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.config.smtp
        if settings.socket:
            self._server = await unix_socket.serve(loop, self._protocol, settings)
        else:
            self._server = await loop.create_server(
                self._protocol, host=settings.host, port=settings.port
            )
        log.info("%s listening on %s", settings.protocol.upper(), ", ".join(self.addresses()))

    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        return [_address(sock.getsockname()) for sock in self._server.sockets]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """421 new sessions, let DATA in progress commit, then close what is left."""
        self.closing = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self._quiet.wait()
                await self.handler.idle.wait()
        except TimeoutError:
            log.warning("DATA still in progress after %ss; closing anyway", grace_seconds)
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self.config.smtp.socket:
            unix_socket.remove(self.config.smtp.socket)


def _address(name: Any) -> str:
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return str(name)  # a Unix socket's path
