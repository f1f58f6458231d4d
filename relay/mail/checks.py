"""Input checked at the door: display names and participants' addresses.

Owns what a name or an address given on the command line (or in a proposals
file) must look like before it is stored. A display name goes into the From
header of every forwarded message, so it may hold no control characters, no
line breaks and no bidirectional overrides (which would make a name read
differently from what it is), and it has a sensible length. A participant's
address must be one plain, syntactically valid address, and never one on
the relay's own domain: a pair address registered as a participant would
send the relay's mail back to itself.
"""

from __future__ import annotations

import re
import unicodedata

from relay.errors import InvalidInputError

NAME_MAX_LENGTH = 100
ADDRESS_MAX_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
LOCAL_PART_MAX_LENGTH = 64

# Characters that change how the text around them is displayed, not what it says.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# dot-atom local part (RFC 5322), lowercased; quoted local parts are not accepted.
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def display_name(text: str) -> str:
    """The name, trimmed; InvalidInputError if it could not be shown as one line in From."""
    name = text.strip()
    if not name:
        raise InvalidInputError("a participant needs a display name")
    for character in name:
        category = unicodedata.category(character)
        if category in ("Cc", "Zl", "Zp") or character in _BIDI_CONTROLS:
            raise InvalidInputError(
                f"the name {name!r} holds a control character or line break "
                f"(U+{ord(character):04X}); give it on one line of plain text"
            )
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInputError(
            f"the name is {len(name)} characters long; at most {NAME_MAX_LENGTH} fit a From header"
        )
    return name


def participant_address(text: str, relay_domain: str | None = None) -> str:
    """One bare address, lowercased; InvalidInputError if it is not one, or is the relay's."""
    address = text.strip().lower()
    local, at, domain = address.rpartition("@")
    shown = text.strip()
    if (
        not at
        or len(address) > ADDRESS_MAX_LENGTH
        or len(local) > LOCAL_PART_MAX_LENGTH
        or not _LOCAL_PART.match(local)
        or not _valid_domain(domain)
    ):
        raise InvalidInputError(f"not an email address: {shown!r} (expected name@example.org)")
    if relay_domain and domain == relay_domain.lower():
        raise InvalidInputError(
            f"{address} is on the relay's own domain ({domain}); a participant needs "
            "their real address, or the relay would send mail to itself"
        )
    return address


def _valid_domain(domain: str) -> bool:
    try:
        # International domain names are checked and stored in their ASCII form's rules.
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_domain.split(".")
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels)
