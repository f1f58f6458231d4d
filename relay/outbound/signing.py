"""The bytes the relay sends: wire form, DKIM-signed for the relay domain when configured.

Owns the last step before a mail enters the outbox. With ``[dkim] selector``
and ``key_file`` set, every outbound mail (forwards and notices alike) gets a
DKIM-Signature for the relay domain (dkimpy, rsa-sha256, relaxed/relaxed),
so receivers can tie the From (always on the relay domain) to the relay.
The key is read once per process; a missing or unreadable key is a
ConfigError naming the file.
"""

from __future__ import annotations

import functools
from email.message import EmailMessage
from pathlib import Path

import dkim

from relay.config import Config
from relay.errors import ConfigError
from relay.outbound.rewrite import as_outbound_bytes

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)


def outbound_bytes(config: Config, message: EmailMessage) -> bytes:
    return sign(config, as_outbound_bytes(message))


def sign(config: Config, content: bytes) -> bytes:
    """Wire bytes with a DKIM-Signature prepended, when [dkim] is configured."""
    settings = config.dkim
    if not settings.selector:
        return content
    key = _private_key(settings.key_file)
    signature = dkim.sign(
        content,
        settings.selector.encode(),
        config.relay.domain.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=list(SIGNED_HEADERS),
    )
    return bytes(signature) + content


@functools.cache
def _private_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"[dkim] key_file {path}: cannot read: {error.strerror}") from None
