"""Replacing participants' real addresses in the text of a message.

Owns the body half of the privacy promise: every registered address of
either participant, in any letter case, is replaced by the pair address in
every text part (plain and HTML, whatever the charset and transfer encoding),
so a quoted reply line ("On Monday, Ana <ana@example.org> wrote:") or a
mailto: link cannot carry it across. A changed part is re-encoded cleanly;
an untouched part keeps its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import EmailMessage

_KEPT_PARAMS = ("format", "delsp", "reply-type")


def address_pattern(addresses: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern that finds any of the addresses."""
    unique = sorted({address.lower() for address in addresses if address}, key=len, reverse=True)
    if not unique:
        return None
    return re.compile("|".join(re.escape(address) for address in unique), re.IGNORECASE)


def replace_addresses(text: str, addresses: Iterable[str], replacement: str) -> str:
    pattern = address_pattern(addresses)
    return pattern.sub(replacement, text) if pattern else text


def scrub_message(message: EmailMessage, addresses: Iterable[str], replacement: str) -> int:
    """Replace the addresses in every text part in place; returns how many parts changed."""
    pattern = address_pattern(addresses)
    if pattern is None:
        return 0
    changed = 0
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        assert isinstance(part, EmailMessage)
        text = decoded_text(part)
        scrubbed = pattern.sub(replacement, text)
        if scrubbed != text:
            set_text(part, scrubbed)
            changed += 1
    return changed


def decoded_text(part: EmailMessage) -> str:
    """The text of a text/* part; an unknown or lying charset never raises."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def set_text(part: EmailMessage, text: str) -> None:
    """Replace a text part's content, keeping its subtype, disposition and flowed params."""
    subtype = part.get_content_subtype()
    charset = part.get_content_charset() or "utf-8"
    kept = {name: part.get_param(name) for name in _KEPT_PARAMS if part.get_param(name)}
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    content_id = part.get("Content-ID")
    try:
        text.encode(charset)
    except (LookupError, UnicodeError):
        charset = "utf-8"
    is_root_without_mime_version = "MIME-Version" not in part
    # Quoted-printable keeps the result 7-bit clean for any smarthost.
    encoding = "7bit" if text.isascii() else "quoted-printable"
    part.set_content(text, subtype=subtype, charset=charset, cte=encoding)
    if is_root_without_mime_version:
        del part["MIME-Version"]
    for name, value in kept.items():
        part.set_param(name, str(value))
    if disposition:
        part.add_header("Content-Disposition", disposition)
        if filename:
            part.set_param("filename", filename, header="Content-Disposition")
    if content_id:
        part["Content-ID"] = content_id
