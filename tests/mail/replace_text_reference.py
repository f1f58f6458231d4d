"""The reference for replace_text: the function as it was before it wrote text parts directly.

Kept verbatim (from relay/mail/parts.py at 3bc7f59, renamed) so that the
direct writing that replaced set_content's header round trips is compared
against set_content itself, byte for byte.
"""

from __future__ import annotations

from email.message import EmailMessage, Message
from email.utils import collapse_rfc2231_value

from relay.mail import quoted_printable
from relay.mail.parts import _KEPT_PARAMS, _content_headers, _transfer_encoding, _writes_lines


def reference_replace_text(part: Message, text: str) -> None:
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
    had_mime_version = "MIME-Version" in part
    if part.get_content_maintype() == "text":
        kept = {
            name: collapse_rfc2231_value(value)
            for name in _KEPT_PARAMS
            if (value := part.get_param(name)) and not isinstance(value, bool)
        }
        charset = part.get_content_charset() or "utf-8"
        if not _writes_lines(charset, text):
            charset = "utf-8"
        encoded = text.encode(charset)
        subtype = part.get_content_subtype()
        cte = _transfer_encoding(encoded)
        width = part.policy.max_line_length
        if cte == "quoted-printable" and width:
            # set_content's own encoder is ~1 ms per 50 KB: its headers, then the same
            # payload written by relay.mail.quoted_printable.
            part.set_content("", subtype=subtype, charset=charset, cte=cte)
            part.set_payload(quoted_printable.body(encoded, width))
        else:
            part.set_content(text, subtype=subtype, charset=charset, cte=cte)
    else:
        name = part.get_param("name", header="Content-Type")
        kept = {"name": collapse_rfc2231_value(name)} if name and not isinstance(name, bool) else {}
        maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
        part.set_content(text.encode("utf-8"), maintype, subtype, cte="base64")
    if not had_mime_version:  # set_content adds one; only a message's top needs it
        del part["MIME-Version"]
    for key, value in kept.items():
        part.set_param(key, value, charset=None if value.isascii() else "utf-8")
    if disposition:
        part.add_header("Content-Disposition", disposition)
        if filename:
            label = None if filename.isascii() else "utf-8"
            part.set_param("filename", filename, header="Content-Disposition", charset=label)
    for key, value in others:
        del part[key]
        part[key] = value
