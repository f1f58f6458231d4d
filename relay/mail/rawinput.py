"""What the relay does with the raw bytes of a message before anything parses them.

Owns the line-ending and smuggling policy, the same for SMTP and IMAP:

- A NUL byte anywhere: refused (550 5.6.0). No mail client sends one; it
  only confuses parsers and the people reading the transcript.
- A line holding only "." that is bounded by a bare CR or bare LF (the SMTP
  smuggling end-of-data sequences "\\n.\\n", "\\r.\\r", "\\r\\n.\\n", "\\n.\\r\\n" ...):
  refused (550 5.6.0). The inbound server only ends DATA on CRLF.CRLF, so
  such a sequence can never split one message into two here, but a message
  carrying one is an attack on some other server and reaches no participant.
- Any other bare CR or bare LF: normalised to CRLF (as Postfix does for
  sloppy clients), so what is stored, read by the rules and forwarded has
  one line-ending convention.
"""

from __future__ import annotations

import re

from relay.errors import RefusedError
from relay.mail import replies

# The line ending after the dot is a lookahead, so overlapping sequences such as
# "\r\n.\r\n.\n" are each seen: the ending of one lone dot begins the next.
_SMUGGLED_END = re.compile(rb"(\r\n|\r|\n)\.(?=(\r\n|\r|\n))")
_BARE_ENDING = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def normalise(raw: bytes) -> bytes:
    """The message with CRLF line endings, or a refusal for NUL and smuggling."""
    if b"\x00" in raw:
        raise RefusedError(replies.NUL_BYTES)
    crlf = raw.count(b"\r\n")
    if raw.count(b"\r") == crlf and raw.count(b"\n") == crlf:
        # Every line ends in CRLF: a lone dot can only sit between CRLFs, which is no
        # smuggling, so the message is stored as it came (nearly every message).
        return raw
    # The scan below tries every line ending; these byte searches decide far faster
    # that most messages need none of it (no line starts with a dot).
    if b"\n." in raw or b"\r." in raw:
        for match in _SMUGGLED_END.finditer(raw):
            if match.group(1) != b"\r\n" or match.group(2) != b"\r\n":
                raise RefusedError(replies.SMUGGLING)
    return _BARE_ENDING.sub(b"\r\n", raw)
