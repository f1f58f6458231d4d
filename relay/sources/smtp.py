"""The inbound SMTP server: an aiosmtpd handler plus the server's life cycle.

The handler is the smallest contract aiosmtpd needs: RCPT asks intake whether
the address is a live pair address (answered on the event loop for a pair
address seen moments ago); DATA hands the bytes to intake.accept_async(),
which decides on the event loop or in a worker thread (relay.intake says
when) and awaits the group commit without holding a thread, and answers with
its reply only after the commit. An internal error is 451 4.3.0, never a 5xx
and never the exception's text.

One client cannot stall the server: at most [smtp] max_connections sessions
(max_connections_per_ip from one address; a Unix socket's clients are not
counted per address) are open, and the next gets 421 4.7.0 and is closed; a
session idle for command_timeout (NOOP and RSET do not count as activity)
or a DATA that has not ended within data_timeout gets 421 4.4.2 and is
closed; the RCPT check and the intake of one message are bounded by
intake_timeout (relay.sources.deadline), after which the client gets
451 4.3.0.

On stop, new sessions get 421 and so does a new MAIL in an open session;
DATA already under way (still being received, or being committed) is allowed
to finish and commit and gets its 250; then the remaining sessions are closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from relay.config import Config
from relay.intake import Incoming, Intake, Outcome
from relay.mail import replies
from relay.mail.envelope import plain_path
from relay.mail.replies import Reply
from relay.sources import unix_socket
from relay.sources.accept_errors import AcceptErrorLimiter
from relay.sources.data_reader import ChunkedDataSMTP
from relay.sources.deadline import accept_bounded, run_bounded
from relay.sources.server_tls import server_tls_context

log = logging.getLogger(__name__)

REFUSAL_LOG_SECONDS = 60.0

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
        intake_timeout: float = 60.0,
    ) -> None:
        self.intake = intake
        self.max_recipients = max_recipients
        self.intake_timeout = intake_timeout
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
        if self.intake.recipient_known(address):  # no thread for a pair address seen just now
            envelope.rcpt_tos.append(address)
            return str(replies.RECIPIENT_OK)
        try:
            reply = await run_bounded(
                lambda: self.intake.check_recipient(address), self.intake_timeout, "RCPT check"
            )
        except Exception:
            log.exception("RCPT check failed")
            return str(replies.TEMPORARY_FAILURE)
        if reply is None:
            return str(replies.TOO_SLOW)
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
            helo=str(session.host_name or ""),
        )
        self.data_in_progress += 1
        self.idle.clear()
        try:
            outcome = await accept_bounded(
                self.intake,
                incoming,
                self.intake_timeout,
                f"intake of a message from {peer or 'a local client'}",
            )
        except Exception:
            log.exception("intake failed; the client will retry")
            return str(replies.TEMPORARY_FAILURE)
        finally:
            self.data_in_progress -= 1
            if not self.data_in_progress:
                self.idle.set()
        if outcome is None:
            return str(replies.TOO_SLOW)
        if outcome.queued:
            self.on_queued()
        self.on_outcome(outcome, time.perf_counter() - started)
        return str(outcome.reply)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        return str(replies.TEMPORARY_FAILURE)


class RelaySMTP(ChunkedDataSMTP):
    """aiosmtpd's SMTP with our reply texts, connection limits and timeouts, and 421 on stop.

    DATA is read in chunks (relay.sources.data_reader), with aiosmtpd's results.

    aiosmtpd restarts one timer (its ``timeout``) at every command and closes
    the connection when it fires; it is armed here with command_timeout, with
    data_timeout from DATA to the final dot, and put back to where it was
    after NOOP and RSET, so a client that only says NOOP is still idle.
    """

    def __init__(
        self,
        handler: RelayHandler,
        gate: SmtpServer,
        data_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.gate = gate
        self.data_timeout = data_timeout
        self._timer_started = 0.0  # when the running timer was armed
        self._timer_before = 0.0  # when the one it replaced was

    def _reset_timeout(self, duration: float | None = None) -> None:
        now = self.loop.time()
        self._timer_before, self._timer_started = self._timer_started, now
        super()._reset_timeout(duration)

    def _keep_idle_clock(self) -> None:
        """Undo the timer restart aiosmtpd made for this command (NOOP, RSET)."""
        started = self._timer_before
        remaining = started + self._timeout_duration - self.loop.time()
        super()._reset_timeout(max(remaining, 0.001))
        self._timer_started = started

    def _timeout_cb(self) -> None:
        # uvloop's transports write but are not subclasses of asyncio's: no isinstance().
        transport = cast(asyncio.WriteTransport | None, self.transport)
        if transport is not None and not transport.is_closing():
            transport.write(f"{replies.TIMED_OUT}\r\n".encode())
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str) -> None:
        self._keep_idle_clock()
        await super().smtp_NOOP(arg)

    @syntax("RSET")
    async def smtp_RSET(self, arg: str) -> None:
        self._keep_idle_clock()
        await super().smtp_RSET(arg)

    @property
    def peer_host(self) -> str:
        """The client's IP address; '' for a Unix socket's client (not counted per address)."""
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else ""

    async def push(self, status: str) -> None:  # type: ignore[override]
        for prefix, ours in _LIBRARY_REPLIES.items():
            if status.startswith(prefix):
                status = ours
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # The plain <local@domain> read without the header parser (relay.mail.envelope).
        plain = plain_path(arg, self.local_part_limit)
        return super()._getaddr(arg) if plain is None else plain

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
        self._reset_timeout(self.data_timeout)
        try:
            await super().smtp_DATA(arg)
        finally:
            self.gate.data_ended()
        if self.transport is not None:
            self._reset_timeout()  # back to command_timeout for what follows

    async def _handle_client(self) -> None:
        # aiosmtpd has no public hook before the greeting; this is the one place to say 421.
        refusal = replies.SHUTTING_DOWN if self.gate.closing else self.gate.admit(self)
        if refusal is not None:
            await self.push(str(refusal))
            if self.transport is not None:
                self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            self.gate.leave(self)


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
        self._per_host: Counter[str] = Counter()
        self._refused = 0
        self._refused_logged = -REFUSAL_LOG_SECONDS
        self._server: asyncio.Server | None = None
        self._watch: asyncio.Task[None] | None = None  # accept_errors' descriptor watch
        self._tls = server_tls_context(config)
        self._data_sessions = 0
        self._quiet = asyncio.Event()  # set while no session is in DATA
        self._quiet.set()

    def admit(self, session: RelaySMTP) -> Reply | None:
        """Count a new session in, or say why it is refused (421 4.7.0)."""
        settings, host = self.config.smtp, session.peer_host
        if len(self.sessions) >= settings.max_connections or (
            host and self._per_host[host] >= settings.max_connections_per_ip
        ):
            self._refused += 1
            now = time.monotonic()
            if now - self._refused_logged >= REFUSAL_LOG_SECONDS:  # a flood must not flood the log
                log.warning(
                    "connection limits reached (%d open, %d from %s): refused %d with 421 4.7.0",
                    len(self.sessions),
                    self._per_host[host],
                    host or "the socket",
                    self._refused,
                )
                self._refused, self._refused_logged = 0, now
            return replies.TOO_MANY_CONNECTIONS
        self.sessions.add(session)
        self._per_host[host] += 1
        return None

    def leave(self, session: RelaySMTP) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            host = session.peer_host
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]

    def data_started(self) -> None:
        self._data_sessions += 1
        self._quiet.clear()

    def data_ended(self) -> None:
        self._data_sessions -= 1
        if not self._data_sessions:
            self._quiet.set()

    def _protocol(self) -> RelaySMTP:
        settings = self.config.smtp
        return self.session_class(
            self.handler,
            self,
            settings.data_timeout.total_seconds(),
            timeout=settings.command_timeout.total_seconds(),
            hostname=self.config.smtp.hostname or self.config.relay.domain,
            data_size_limit=self.config.relay.max_message_size,
            enable_SMTPUTF8=True,
            ident="mentor-relay",
            tls_context=self._tls,
            require_starttls=self.config.smtp.require_starttls,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        limiter = AcceptErrorLimiter(loop.default_exception_handler)
        loop.set_exception_handler(limiter)
        settings = self.config.smtp
        if settings.socket:
            self._server = await unix_socket.serve(loop, self._protocol, settings)
        else:
            self._server = await loop.create_server(
                self._protocol, host=settings.host, port=settings.port
            )
        self._watch = loop.create_task(limiter.watch_descriptors())
        log.info("%s listening on %s", settings.protocol.upper(), ", ".join(self.addresses()))

    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        return [_address(sock.getsockname()) for sock in self._server.sockets]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_seconds: float = 30.0) -> bool:
        """421 new sessions, let DATA in progress commit, then close what is left.

        False when DATA was still in progress at the end of the grace.
        """
        self.closing = True
        finished = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self._quiet.wait()
                await self.handler.idle.wait()
        except TimeoutError:
            log.warning("DATA still in progress after %ss; closing anyway", grace_seconds)
            finished = False
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self._watch is not None:
            self._watch.cancel()
        if self.config.smtp.socket:
            unix_socket.remove(self.config.smtp.socket)
        return finished


def _address(name: Any) -> str:
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return str(name)  # a Unix socket's path
