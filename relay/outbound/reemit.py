"""Kept headers written anew from their parsed values, never passed on as the sender wrote them.

Owns what becomes of a header the allow-lists keep. A header's text can
carry comments and free text that no reader needs (``Date: ... (ana@...)``,
``MIME-Version: 1.0 (Produced by ana@... on mail.host)``, ``Content-Type:
text/plain; charset=utf-8 (ana@...)``) and a multipart boundary that names
the sender's host or client; so every kept header is parsed and only its
value is written out again:

- Date: the sender's instant, in UTC, in the relay's own format (the sender's
  time zone offset is a clue to where they are); now, when it cannot be read;
- MIME-Version: always ``1.0``;
- Content-Type: the type and its parameters, except the boundary, which the
  generator makes anew (the email package's own, checked against the text);
- Content-Transfer-Encoding: the parsed mechanism;
- Content-Disposition: the disposition and its parameters;
- Content-Language: the language tags alone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import Message
from email.utils import encode_rfc2231, format_datetime
from typing import Any

# RFC 5646 language tags, as Content-Language lists them (RFC 3282).
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_COMMENT = re.compile(r"\([^()]*\)")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_COMMENT_DEPTH = 10


def relay_date(value: object) -> str:
    """The Date to send: the parsed instant in UTC (RFC 5322 format), or now if unreadable."""
    instant = getattr(value, "datetime", None)
    if not isinstance(instant, datetime) or instant.tzinfo is None:
        instant = datetime.now(UTC)
    return format_datetime(instant.astimezone(UTC), usegmt=True)


def language_tags(value: str) -> str:
    """Content-Language with comments and anything that is not a language tag left out."""
    text = value
    for _ in range(_MAX_COMMENT_DEPTH):  # comments nest; each pass removes the innermost
        stripped = _COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    if "(" in text or ")" in text:
        return ""
    tags = [item.strip() for item in text.split(",")]
    return ", ".join(tag for tag in tags if _LANGUAGE_TAG.fullmatch(tag))


def _parameter(name: str, value: str) -> str:
    if not value.isascii():
        return f"{name}*={encode_rfc2231(value, 'utf-8')}"
    if _TOKEN.fullmatch(value):
        return f"{name}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def _with_parameters(head: str, params: dict[str, str]) -> str:
    return "; ".join([head, *(_parameter(name, value) for name, value in params.items())])


def _params(part: Message, header: str) -> dict[str, str] | None:
    try:
        parsed: Any = part[header]
        return {str(name): str(value) for name, value in parsed.params.items()}
    except Exception:  # the header registry's failures are the input's fault, any kind
        return None


def reemit_content_headers(part: Message) -> None:
    """Write this part's Content-* headers (and MIME-Version) anew from their parsed values."""
    if "Content-Type" in part:
        params = _params(part, "Content-Type") or {}
        params.pop("boundary", None)
        content_type = part.get_content_type()
        _replace(part, "Content-Type", _with_parameters(content_type, params))
    if "Content-Transfer-Encoding" in part:
        cte = str(getattr(part["Content-Transfer-Encoding"], "cte", "") or "")
        _replace(part, "Content-Transfer-Encoding", cte if _TOKEN.fullmatch(cte) else "")
    if "Content-Disposition" in part:
        disposition = (part.get_content_disposition() or "").lower()
        params = _params(part, "Content-Disposition") or {}
        value = _with_parameters(disposition, params) if _TOKEN.fullmatch(disposition) else ""
        _replace(part, "Content-Disposition", value)
    if "Content-Language" in part:
        _replace(part, "Content-Language", language_tags(str(part["Content-Language"])))
    if "MIME-Version" in part:
        _replace(part, "MIME-Version", "1.0")


def _replace(part: Message, name: str, value: str) -> None:
    del part[name]
    if value:
        part[name] = value
