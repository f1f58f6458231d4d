"""Replacing participants' real addresses wherever a message carries them.

Owns the body half of the privacy promise: every registered address of
either participant, in any letter case and in every textual form a mail
client produces (plain, URL-encoded ``ana%40example.org``, HTML entities
``ana&#64;example.org``, ``mailto:`` links with ``?subject=``, JSON escapes),
is replaced by the pair address in every text part (plain, HTML, vCard,
calendar; whatever the charset and transfer encoding), in attachment file
names, and in the headers of forwarded messages (message/rfc822) inside it.

The walk over the MIME tree and what is done to part headers (Content-ID,
parameters, nested messages' headers) lives in relay.scrub_parts; this
module owns the textual forms and the entry point ``scrub_message``.
A changed part is re-encoded cleanly; an untouched part keeps its bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from relay.outbound import scrub_parts

_KEPT_PARAMS = ("format", "delsp", "reply-type", "method", "component", "name")
# How a client may write a character of an address besides the character itself.
_NAMED_ENTITIES = {
    "@": ("&commat;",),
    ".": ("&period;",),
    "_": ("&lowbar;",),
    "+": ("&plus;",),
    "-": ("&dash;", "&hyphen;"),
}
# Forms only the "@" takes: quoted-printable left undecoded (vCard 2.1), JS/JSON escapes.
_AT_ONLY = ("=40", r"\u0040", r"\x40")
# What a client may put inside an address without changing what a reader sees:
# <wbr> (Gmail, in long addresses), soft hyphens and zero-width characters.
_INVISIBLE = (
    r"(?:<wbr\s*/?>|&shy;|&#0*173;|&#x0*ad;|&#0*8203;|&#x0*200b;|&zwn?j;"
    r"|[\u00ad\u200b-\u200d\u2060])*"
)
# vCard and iCalendar fold long lines by inserting CRLF + space, even inside an address.
FOLDED_TYPES = frozenset(
    {"text/calendar", "text/vcard", "text/x-vcard", "text/directory", "application/ics"}
)
_FOLD = re.compile(r"\r?\n[ \t]")
_FOLD_WIDTH = 75


def _char_forms(char: str) -> str:
    code = ord(char)
    forms = [re.escape(char), f"%{code:02x}", f"&#0*{code};?", f"&#x0*{code:x};?"]
    forms += [re.escape(form) for form in _NAMED_ENTITIES.get(char, ())]
    if char == "@":
        forms += [re.escape(form) for form in _AT_ONLY]
    return "(?:" + "|".join(forms) + ")"


def address_pattern(addresses: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern that finds any of the addresses, in any textual form."""
    unique = sorted({address.lower() for address in addresses if address}, key=len, reverse=True)
    return _address_pattern(tuple(unique)) if unique else None


@functools.lru_cache(maxsize=256)  # the same pair's addresses, message after message
def _address_pattern(addresses: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(
        "|".join(_INVISIBLE.join(_char_forms(char) for char in address) for address in addresses),
        re.IGNORECASE,
    )


def host_pattern(domains: Iterable[str]) -> re.Pattern[str] | None:
    """Finds any of the domains or a host under one of them (mail.example.org)."""
    unique = sorted({d.lower().strip(".") for d in domains if d}, key=len, reverse=True)
    return _host_pattern(tuple(unique)) if unique else None


@functools.lru_cache(maxsize=256)
def _host_pattern(domains: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(domain) for domain in domains)
    return re.compile(rf"(?<![\w.-])(?:[\w-]+\.)*(?:{names})(?![\w-]|\.\w)", re.IGNORECASE)


def replace_addresses(text: str, addresses: Iterable[str], replacement: str) -> str:
    pattern = address_pattern(addresses)
    return pattern.sub(replacement, text) if pattern else text


class Scrubber:
    """Everything needed to scrub one message, compiled once."""

    def __init__(
        self,
        addresses: Iterable[str],
        replacement: str,
        hidden_domains: Iterable[str] | None = None,
    ) -> None:
        listed = tuple(dict.fromkeys(a.lower() for a in addresses if a))
        self.addresses = listed
        self.replacement = replacement
        self.relay_domain = replacement.rpartition("@")[2]
        self.pattern = address_pattern(listed)
        domains = (
            hidden_domains
            if hidden_domains is not None
            else (address.rpartition("@")[2] for address in listed)
        )
        self.hosts = host_pattern(domains)

    def text(self, text: str) -> str:
        """The participants' addresses replaced by the pair address."""
        return self.pattern.sub(self.replacement, text) if self.pattern else text

    def hosts_too(self, text: str) -> str:
        """Addresses replaced, then any host on a participant's domain replaced by the relay's.

        Only for machine-made values (identifiers, boundaries, calendar
        fields), where no reader needs the host to stay readable.
        """
        text = self.text(text)
        return self.hosts.sub(self.relay_domain, text) if self.hosts else text

    def folded_text(self, text: str) -> str:
        """Scrub vCard/iCalendar text: unfold first, so a folded address is found."""
        unfolded = _FOLD.sub("", text)
        scrubbed = self.hosts_too(unfolded)
        if scrubbed == unfolded:
            return text
        newline = "\r\n" if "\r\n" in text else "\n"
        return newline.join(_fold(line, newline) for line in scrubbed.split(newline))


def _fold(line: str, newline: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1, RFC 6350 3.2)."""
    if len(line.encode("utf-8")) <= _FOLD_WIDTH:
        return line
    pieces: list[str] = []
    current = ""
    for char in line:
        if len((current + char).encode("utf-8")) > _FOLD_WIDTH - (1 if pieces else 0):
            pieces.append(current)
            current = ""
        current += char
    pieces.append(current)
    return (newline + " ").join(pieces)


def scrub_message(
    message: EmailMessage,
    addresses: Iterable[str],
    replacement: str,
    *,
    hidden_domains: Iterable[str] | None = None,
) -> int:
    """Scrub the message in place; returns how many text parts changed.

    ``hidden_domains`` (default: the domains of ``addresses``) are replaced
    by the relay's domain in machine-made values only: boundaries, calendar
    and vCard fields, nested messages' headers. Content-IDs are always
    replaced by opaque ones on the relay's domain (and the HTML's cid:
    links with them), since their right-hand side names the sender's
    domain or machine.
    """
    scrubber = Scrubber(addresses, replacement, hidden_domains)
    if scrubber.pattern is None:
        return 0
    return scrub_parts.scrub_tree(message, scrubber, _scrub_body)


def _scrub_body(part: EmailMessage, scrubber: Scrubber, extra: Callable[[str], str]) -> bool:
    """Scrub one leaf part's text; True when it changed. Binary parts are left alone."""
    if not is_textual(part):
        return False
    content_type = part.get_content_type()
    text = decoded_text(part)
    scrubbed = extra(text)
    if content_type == "text/rfc822-headers":
        scrubbed = headers_only_kept(scrubbed)
    if content_type in FOLDED_TYPES or _filename_type(part) in FOLDED_TYPES:
        scrubbed = scrubber.folded_text(scrubbed)
    else:
        scrubbed = scrubber.text(scrubbed)
    if scrubbed == text:
        return False
    if part.get_content_maintype() == "text":
        set_text(part, scrubbed)
    else:
        set_textual_bytes(part, scrubbed)
    return True


def headers_only_kept(text: str) -> str:
    """A bounce's copy of a message's headers, cut to what a reader needs (no Received, no IPs)."""
    parsed = HeaderParser(policy=policy.default).parsestr(text)
    kept = []
    for name, value in parsed.items():
        if name.lower() in scrub_parts.NESTED_KEPT:
            try:
                kept.append(f"{name}: {value}")
            except Exception:  # an unreadable header is dropped, not passed on unread
                continue
    return "\n".join(kept) + "\n"


def _filename_type(part: EmailMessage) -> str:
    """The type a textual attachment's name says it has (contact.vcf sent as octet-stream)."""
    name = (part.get_filename() or "").lower()
    if name.endswith((".vcf", ".vcard")):
        return "text/vcard"
    if name.endswith((".ics", ".vcs")):
        return "text/calendar"
    return ""


def is_textual(part: EmailMessage) -> bool:
    """Whether a leaf part is text a scrub can rewrite without breaking a file format."""
    if part.get_content_maintype() == "text":
        return True
    return part.get_content_type() in FOLDED_TYPES or bool(_filename_type(part))


def decoded_text(part: EmailMessage) -> str:
    """The text of a part; an unknown or lying charset never raises."""
    if part.get_content_maintype() == "text":
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except (LookupError, UnicodeError, AssertionError, ValueError):
            pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    for charset in (part.get_content_charset() or "utf-8", "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeError):
            continue
    # Latin-1 decodes any bytes and keeps every ASCII address findable.
    return payload.decode("latin-1")


def _content_headers(part: EmailMessage) -> list[tuple[str, str]]:
    """Content-* headers set_content would drop and not write again."""
    rewritten = {"content-type", "content-transfer-encoding", "content-disposition"}
    return [
        (name, str(value))
        for name, value in part.items()
        if name.lower().startswith("content-") and name.lower() not in rewritten
    ]


def _transfer_encoding(data: bytes) -> str:
    """7bit when it is, else quoted-printable, or base64 when mostly non-ASCII."""
    if data.isascii() and all(len(line) <= 998 for line in data.splitlines()):
        return "7bit"
    high = sum(1 for byte in data if byte > 127)
    return "base64" if high * 3 > len(data) else "quoted-printable"


def set_text(part: EmailMessage, text: str) -> None:
    """Replace a text part's content, keeping its subtype, disposition and other headers."""
    subtype = part.get_content_subtype()
    charset = part.get_content_charset() or "utf-8"
    kept = {
        name: collapse_rfc2231_value(value)
        for name in _KEPT_PARAMS
        if (value := part.get_param(name)) and not isinstance(value, bool)
    }
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    others = _content_headers(part)
    try:
        encoded = text.encode(charset)
    except (LookupError, UnicodeError):
        charset = "utf-8"
        encoded = text.encode(charset)
    is_root_without_mime_version = "MIME-Version" not in part
    part.set_content(text, subtype=subtype, charset=charset, cte=_transfer_encoding(encoded))
    if is_root_without_mime_version:
        del part["MIME-Version"]
    for name, value in kept.items():
        part.set_param(name, value, charset=None if value.isascii() else "utf-8")
    _restore(part, disposition, filename, others)


def set_textual_bytes(part: EmailMessage, text: str) -> None:
    """Replace a non-text/* textual part (application/ics, a .vcf file) as UTF-8 bytes."""
    maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    name = part.get_param("name", header="Content-Type")
    others = _content_headers(part)
    data = text.encode("utf-8")
    had_mime_version = "MIME-Version" in part
    part.set_content(data, maintype, subtype, cte="base64")
    if not had_mime_version:
        del part["MIME-Version"]
    if name:
        value = collapse_rfc2231_value(name)
        part.set_param("name", value, charset=None if value.isascii() else "utf-8")
    _restore(part, disposition, filename, others)


def _restore(
    part: EmailMessage,
    disposition: str | None,
    filename: str | None,
    others: list[tuple[str, str]],
) -> None:
    if disposition:
        part.add_header("Content-Disposition", disposition)
        if filename:
            charset = None if filename.isascii() else "utf-8"
            part.set_param("filename", filename, header="Content-Disposition", charset=charset)
    for name, value in others:
        del part[name]
        part[name] = value
