"""The inbound listener [smtp] asks for: SMTP or LMTP, on host:port or a Unix socket.

The one place that maps ``[smtp] protocol`` to a handler and a session class;
relay.service starts what this returns and stops it like any SmtpServer.
"""

from __future__ import annotations

from collections.abc import Callable

from relay.config import Config
from relay.intake import Intake
from relay.sources.lmtp import LmtpHandler, RelayLMTP
from relay.sources.smtp import RelayHandler, SmtpServer


def inbound_server(
    config: Config, intake: Intake, on_queued: Callable[[], None] = lambda: None
) -> SmtpServer:
    # The RCPT check and one message's intake are bounded ([smtp] intake_timeout).
    bound = config.smtp.intake_timeout.total_seconds()
    if config.smtp.protocol == "lmtp":
        lmtp_handler = LmtpHandler(
            intake, config.relay.max_recipients, on_queued=on_queued, intake_timeout=bound
        )
        return SmtpServer(config, lmtp_handler, session_class=RelayLMTP)
    handler = RelayHandler(
        intake, config.relay.max_recipients, on_queued=on_queued, intake_timeout=bound
    )
    return SmtpServer(config, handler)
