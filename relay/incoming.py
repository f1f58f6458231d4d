"""A message as a source hands it to intake (Incoming), and what intake answers (Outcome).

Kept apart from relay.intake, which re-exports both, so that a source, the
metrics and the tests name these two without the orchestration around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from relay.mail.replies import Reply
from relay.rules.base import Action, Hit


@dataclass(frozen=True)
class Incoming:
    """A message as a source received it, before anything is decided."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    source: str  # "smtp", "lmtp" or "imap"
    peer: str = ""  # the client's IP address (SPF), when the source knows it
    helo: str = ""  # the name the client gave in HELO/EHLO


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    message_ids: tuple[int, ...] = ()
    action: Action | None = None  # None: refused before anything was stored
    hits: tuple[Hit, ...] = ()
    notified: bool = False  # notices queued without a message (concern@, offer replies)

    @property
    def queued(self) -> bool:
        """Something new waits in the outbox (a forward or a notice)."""
        return self.notified or (self.action is not None and self.action is not Action.DISCARD)
