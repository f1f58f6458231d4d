"""How much header a message may carry, checked on the raw bytes before anything parses them.

Owns the header limits ([relay] max_header_count, max_header_size, like
Postfix's header_size_limit): a header section past either is refused with
552 5.3.4 before the parser, the rules or the rewrite ever see it, so one
client cannot buy minutes of CPU with 100,000 header fields. The check is
one pass over the header section; the body is not read.
"""

from __future__ import annotations

import re

from relay.errors import RefusedError
from relay.mail import replies
from relay.settings import RelaySettings

_FIELD_START = re.compile(rb"\r\n(?![ \t])")  # a line break that is not a fold


def check_headers(raw: bytes, settings: RelaySettings) -> None:
    """Refuse (552 5.3.4) a message whose top-level header section passes either limit.

    ``raw`` has CRLF line endings (relay.mail.rawinput.normalise).
    """
    max_count, max_size = settings.max_header_count, settings.max_header_size
    end = raw.find(b"\r\n\r\n", 0, max_size + 4)
    if end < 0:
        if len(raw) > max_size:  # no blank line within the limit: the header section is longer
            raise RefusedError(replies.HEADERS_TOO_BIG)
        end = len(raw)
    section = raw[:end]
    if section.startswith(b"\r\n"):  # an empty header section
        return
    count = 1 + sum(1 for _ in _FIELD_START.finditer(section))
    if count > max_count:
        raise RefusedError(replies.TOO_MANY_HEADERS)
