"""The inbound server speaking LMTP (RFC 2033), for an MTA in front ([smtp] protocol = "lmtp").

The same server as relay.sources.smtp (its stop, its reply texts, the same
intake) with two differences LMTP requires: LHLO instead of EHLO (aiosmtpd's
LMTP class), and after DATA one reply per accepted recipient, in RCPT order.
Each recipient is its own intake.accept() and its own commit, so a message
for two pair addresses can be accepted for one and refused for the other,
and each 250 still comes only after that recipient's commit. A refusal that
comes before the handler is asked (message too big, line too long) is
repeated for every recipient, as the client waits for that many replies.
The same address given twice is delivered once and answered twice.
"""

from __future__ import annotations

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from relay.mail.addresses import normalise
from relay.sources.smtp import RelayHandler, RelaySMTP


class LmtpHandler(RelayHandler):
    source = "lmtp"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answered: dict[str, str] = {}
        replies = []
        for recipient in envelope.rcpt_tos:
            # The same address twice (in another case) is one delivery, answered twice.
            key = normalise(recipient)
            if key not in answered:
                answered[key] = await self.accept(session, envelope, (recipient,))
            replies.append(answered[key])
        return "\r\n".join(replies)


class RelayLMTP(RelaySMTP, LMTP):
    """RelaySMTP's behaviour with LMTP's greeting and per-recipient replies."""

    _replies_due = 0  # replies owed once the message has been received; 0 until then
    _recipients = 0

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._recipients = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self._replies_due = self._recipients = 0

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status.startswith("354") and self._recipients:
            self._replies_due = self._recipients  # from here on, DATA's answer is per recipient
            await super().push(status)
            return
        due = self._replies_due
        if not due:
            await super().push(status)
            return
        lines = status.split("\r\n")
        if len(lines) != due:
            lines = [status] * due  # one refusal for the whole message: say it for each
        self._replies_due = 0
        for line in lines:
            await super().push(line)
