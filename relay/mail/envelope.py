"""The address in an SMTP MAIL FROM or RCPT TO argument, read without the header parser.

aiosmtpd reads the path in ``MAIL FROM:<a@b> SIZE=123`` with the stdlib's
RFC 5322 header parser (``get_angle_addr``), which builds a token tree, and
defines a ``typing.Protocol`` class on every call (a new class per command):
together about an eighth of the daemon's time per 1 KB message. Nearly every
path a client sends is the plain form ``<local@domain>``, a dot-atom on each
side, with parameters after a space. `plain_path` reads that form with one
regular expression and gives exactly what the header parser gives for it;
for anything else (quoted local parts, comments, domain literals, source
routes, encoded words, non-ASCII, the null path) it gives None and the
caller uses the header parser as before.
"""

from __future__ import annotations

import re

# RFC 5322 atext; the header parser's atoms admit more (any non-special), so a path
# this pattern refuses is not wrong, only read the slow way.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_PATH = re.compile(rf"<({_DOT_ATOM})@({_DOT_ATOM})>")
_SPACE = " \t"  # what the header parser takes as the start of folding white space


def plain_path(argument: str, local_part_limit: int = 0) -> tuple[str | None, str | None] | None:
    """(address, the rest after the path) for a plain `<local@domain> ...`, as aiosmtpd's
    ``_getaddr`` gives it: (None, None) for a local part over local_part_limit (0: none).

    The rest is what ``get_angle_addr`` leaves: white space after the ``>`` is
    dropped. None: not the plain form, read it with the header parser.
    """
    match = _PLAIN_PATH.match(argument)
    if match is None:
        return None
    local, domain = match.group(1), match.group(2)
    if "=?" in local or "=?" in domain:
        return None  # the header parser tries an encoded word there
    rest = argument[match.end() :]
    if rest and rest[0] in _SPACE:
        rest = rest.lstrip()  # the header parser strips any white space once it sees one
    if rest and rest[0] in " \t(":
        return None  # a comment (or white space the header parser reads as folding)
    if local_part_limit and len(local) > local_part_limit:
        return None, None
    return f"{local}@{domain}", rest
