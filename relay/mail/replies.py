"""Every SMTP reply the relay sends, numbered, in one place.

Keeping them together makes the promise of each code easy to review: 5xx
only for decisions about the message itself, 4xx for anything that may
succeed later (an internal error is never a 5xx and never shows its text).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    code: int
    status: str  # enhanced status code, RFC 3463
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 300


OK = Reply(250, "2.0.0", "OK: queued")
RECIPIENT_OK = Reply(250, "2.1.5", "OK")
DISCARDED = Reply(250, "2.0.0", "OK")  # a discard looks like success on purpose

NOT_OUR_DOMAIN = Reply(550, "5.7.1", "relaying denied: not a domain this relay serves")
# An ended pair gets the same answer as one that never was: no oracle.
UNKNOWN_PAIR = Reply(550, "5.1.1", "unknown pair address")
# Only with [rules.authentication] mode = "off"; otherwise such mail is set aside.
STRANGER = Reply(550, "5.7.1", "sender is not a participant of this pair")
# A From not authenticated, or naming no participant, when the table says reject.
UNVERIFIED = Reply(550, "5.7.1", "sender could not be verified")
BAD_FROM = Reply(550, "5.7.1", "message must have exactly one From address")
NULL_SENDER = Reply(550, "5.7.1", "pair addresses do not accept bounces")
OUTSIDE_RECIPIENT = Reply(550, "5.7.1", "message names a recipient outside the pair")
REJECTED = Reply(550, "5.7.0", "message refused by the programme's rules")
TOO_BIG = Reply(552, "5.3.4", "message too big for this relay")
LINE_TOO_LONG = Reply(500, "5.6.0", "line too long: end lines with CRLF, at most 998 characters")
TOO_MANY_HEADERS = Reply(552, "5.3.4", "too many header fields in this message")
HEADERS_TOO_BIG = Reply(552, "5.3.4", "header section of this message too big")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "too many recipients")
MALFORMED = Reply(550, "5.6.0", "message is malformed")
NUL_BYTES = Reply(550, "5.6.0", "message contains NUL bytes")
SMUGGLING = Reply(550, "5.6.0", "message contains a bare CR or LF around a lone dot")

TEMPORARY_FAILURE = Reply(451, "4.3.0", "temporary failure, please try again later")
TOO_SLOW = Reply(451, "4.3.0", "message took too long to process, please try again later")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "too many connections, try again later")
TIMED_OUT = Reply(421, "4.4.2", "timeout exceeded, closing connection")
SHUTTING_DOWN = Reply(421, "4.3.2", "service shutting down, try again later")
