"""Recognising TNEF (Outlook's winmail.dat), a binary part that names its sender.

TNEF carries the sender's address, display name, client and machine in a
binary format nothing in the relay can scrub; the identity_parts rule holds
a message with one, and the outbound copy goes without it.
"""

from __future__ import annotations

from email.message import Message

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
TNEF_NAMES = frozenset({"winmail.dat", "win.dat"})


def is_tnef(part: Message) -> bool:
    """A TNEF file, by its type or by the name Outlook gives it."""
    if part.get_content_type() in TNEF_TYPES:
        return True
    try:
        name = (part.get_filename() or "").strip().lower()
    except Exception:  # a file name the header registry cannot read is not TNEF's
        return False
    return name in TNEF_NAMES
