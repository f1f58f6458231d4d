"""The text of one MIME part: reading it, and writing new text into it.

Owns the one ``decode_text`` and the one ``replace_text`` of the relay. The
rules' view (relay.mail.text), scrubbing and the identity-part filter
(relay.outbound.scrub, relay.outbound.identity_parts) and redaction
(relay.outbound.redact) all read and write parts through these two, so a
rule's span, the scrubber's match and a moderator's redaction index the same
text, whatever the charset and transfer encoding, and however they lie.
"""

from __future__ import annotations

import binascii
import codecs
import email.charset
import re
from email.message import EmailMessage, Message
from email.utils import collapse_rfc2231_value, quote

from relay.mail import quoted_printable

# Content-Type parameters a rewritten part keeps; anything else a client
# invented goes, like every header outside an allow-list.
_KEPT_PARAMS = ("format", "delsp", "reply-type", "method", "component", "name")
_MAX_LINE = 998  # RFC 5322 line limit; longer lines need an encoding
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")  # a subtype written as it is

# The fallback when neither the declared charset nor UTF-8 reads a part:
# windows-1252 as browsers and mail clients read it (the WHATWG Encoding
# standard maps the labels iso-8859-1 and us-ascii, and unlabelled 8-bit
# Western mail, to it), with its five undefined bytes kept as the C1
# controls of the same number. It decodes every byte to one distinct
# character, so nothing is lost and every ASCII address and phone number
# stays where the scrubber and the rules look for it; and it shows smart
# quotes, dashes and the euro sign as the sender wrote them, where latin-1
# would read them as invisible control characters (a dash in a phone number
# would stop being one for the rules) and Python's cp1252 would turn five
# bytes into U+FFFD.
_WINDOWS_1252 = str.maketrans(
    {
        chr(byte): bytes([byte]).decode("cp1252")
        for byte in range(0x80, 0xA0)
        if bytes([byte]).decode("cp1252", errors="replace") != "\ufffd"
    }
)


def decode_text(part: Message) -> str:
    """A part's text. Never raises, whatever the charset or transfer encoding claims.

    Read with the declared charset, else as UTF-8, else (a lying or unknown
    charset) with the declared one replacing what it cannot read, or as
    windows-1252 (see ``_WINDOWS_1252``) when there is no usable one.
    """
    try:
        data = part.get_payload(decode=True)
    except Exception:  # broken transfer encoding; the raw payload is all there is
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    declared = _declared_codec(part)
    for codec in (declared, "utf-8"):
        if codec:
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                pass
    if declared and declared != "ascii":
        return data.decode(declared, errors="replace")
    return data.decode("latin-1").translate(_WINDOWS_1252)


def _declared_codec(part: Message) -> str | None:
    try:
        name = part.get_content_charset()
    except Exception:  # a malformed Content-Type: as if no charset were given
        return None
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip('"')).name
    except (LookupError, ValueError):
        return None


def replace_text(part: Message, text: str) -> None:
    """Put ``text`` into a leaf part in place of its content.

    The part keeps its type, disposition, file name, Content-ID and other
    Content-* headers and the parameters in ``_KEPT_PARAMS``. A text/* part
    keeps its declared charset when the text can be written in it as lines
    of text, else it becomes UTF-8; the transfer encoding is the lightest
    that fits. Any other textual part (application/ics, a .vcf file sent as
    application/octet-stream) becomes UTF-8 bytes in base64.
    """
    assert isinstance(part, EmailMessage)  # the relay parses with policy.default
    disposition = part.get_content_disposition()
    filename = part.get_filename()
    others = _content_headers(part)
    if part.get_content_maintype() == "text":
        _replace_text_body(part, text)
    else:
        had_mime_version = "MIME-Version" in part
        name = part.get_param("name", header="Content-Type")
        maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
        part.set_content(text.encode("utf-8"), maintype, subtype, cte="base64")
        if not had_mime_version:  # set_content adds one; only a message's top needs it
            del part["MIME-Version"]
        if name and not isinstance(name, bool):
            _set_params(part, {"name": collapse_rfc2231_value(name)})
    if disposition:
        part.add_header("Content-Disposition", disposition)
        if filename:
            label = None if filename.isascii() else "utf-8"
            part.set_param("filename", filename, header="Content-Disposition", charset=label)
    for key, value in others:
        del part[key]
        part[key] = value


def _replace_text_body(part: EmailMessage, text: str) -> None:
    """A text/* part's Content-Type, Content-Transfer-Encoding and payload, written anew."""
    # One parse of the parameters; get_param(name) is the first of get_params() by that name.
    found: dict[str, str] = {}
    for param, param_value in part.get_params() or ():
        found.setdefault(param.lower(), param_value)
    kept = {
        name: collapse_rfc2231_value(value)
        for name in _KEPT_PARAMS
        if (value := found.get(name)) and not isinstance(value, bool)
    }
    charset = part.get_content_charset() or "utf-8"
    if not _writes_lines(charset, text):
        charset = "utf-8"
    encoded = text.encode(charset)
    subtype = part.get_content_subtype()
    cte = _transfer_encoding(encoded)
    width = part.policy.max_line_length
    if width and _TOKEN.fullmatch(subtype) and all(map(str.isascii, kept.values())):
        _write_text_directly(part, subtype, charset, cte, encoded, kept, width)
        return
    had_mime_version = "MIME-Version" in part
    part.set_content(text, subtype=subtype, charset=charset, cte=cte)
    if not had_mime_version:  # set_content adds one; only a message's top needs it
        del part["MIME-Version"]
    _set_params(part, kept)


def _write_text_directly(
    part: EmailMessage,
    subtype: str,
    charset: str,
    cte: str,
    encoded: bytes,
    kept: dict[str, str],
    width: int,
) -> None:
    """What ``set_content(text, subtype, charset, cte)`` and then ``set_param`` for each
    kept parameter leave in the part, written without their header round trips.

    The same headers in the same order (set_param moves Content-Type to the end when it
    adds a parameter), the same header text (set_param's quoting of ASCII values), and
    the same payload (``email.contentmanager``'s encodings of the text's lines). The
    callers keep to what this covers: a token subtype, ASCII parameters, a line width.
    tests/mail/test_replace_text.py compares both ways, byte for byte.
    """
    if cte == "7bit":
        payload = (b"\n".join(encoded.splitlines()) + b"\n").decode("ascii")
    elif cte == "quoted-printable":
        payload = quoted_printable.body(encoded, width)
    else:
        line_end = part.policy.linesep.encode("ascii")
        data = line_end.join(encoded.splitlines()) + line_end
        step = width // 4 * 3
        payload = "".join(
            binascii.b2a_base64(data[i : i + step]).decode("ascii")
            for i in range(0, len(data), step)
        )
    content_type = "; ".join(
        [
            f"text/{subtype}",
            _quoted_param("charset", email.charset.ALIASES.get(charset, charset)),
            *(_quoted_param(name, value) for name, value in kept.items()),
        ]
    )
    part.clear_content()
    if kept:
        part["Content-Transfer-Encoding"] = cte
        part["Content-Type"] = content_type
    else:
        part["Content-Type"] = content_type
        part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload)


def _quoted_param(name: str, value: str) -> str:
    """An ASCII parameter as ``Message.set_param`` writes it (always quoted)."""
    return f'{name}="{quote(value)}"' if value else name


def _set_params(part: EmailMessage, params: dict[str, str]) -> None:
    for key, value in params.items():
        part.set_param(key, value, charset=None if value.isascii() else "utf-8")


def _writes_lines(charset: str, text: str) -> bool:
    """Whether ``text`` can be written in ``charset`` as an ordinary MIME text body."""
    try:
        text.encode(charset)
        # UTF-16 and friends encode, but not as lines of text a mail client expects.
        return "a\n".encode(charset) == b"a\n"
    except (LookupError, UnicodeError):
        return False


def _content_headers(part: EmailMessage) -> list[tuple[str, str]]:
    """Content-* headers set_content would drop and not write again (Content-ID and others)."""
    rewritten = {"content-type", "content-transfer-encoding", "content-disposition"}
    # part.items() without parsing the headers left out (on a message's top part: From,
    # Subject, Message-ID, ...): the same fetch, for the Content-* ones only.
    fetch = part.policy.header_fetch_parse
    return [
        (name, str(fetch(name, value)))
        for name, value in part.raw_items()
        if name.lower().startswith("content-") and name.lower() not in rewritten
    ]


def _transfer_encoding(data: bytes) -> str:
    """7bit when it is, else quoted-printable, or base64 when mostly non-ASCII."""
    if data.isascii() and max(map(len, data.splitlines()), default=0) <= _MAX_LINE:
        return "7bit"
    high = len(data.translate(None, _ASCII))  # the bytes above 127, counted in C
    return "base64" if high * 3 > len(data) else "quoted-printable"


_ASCII = bytes(range(128))
