"""The raw bytes' policy called directly: line endings made CRLF, NUL and smuggling refused."""

from __future__ import annotations

import pytest

from relay.errors import RefusedError
from relay.mail.rawinput import normalise


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"a\r\nb\nc\rd", b"a\r\nb\r\nc\r\nd"),
        (b"a\r\r\nb", b"a\r\n\r\nb"),
        (b"a\n\r\nb", b"a\r\n\r\nb"),
        (b"a\r\n.\r\nb\r\n..x\r\n", b"a\r\n.\r\nb\r\n..x\r\n"),  # a lone dot between CRLFs
        (b"", b""),
    ],
)
def test_line_endings_are_made_crlf(raw: bytes, stored: bytes) -> None:
    assert normalise(raw) == stored


@pytest.mark.parametrize(
    "raw", [b"a\n.\nb", b"a\r.\rb", b"a\r\n.\nb", b"a\n.\r\nb", b"a\r\n.\r.\nb", b"a\x00b"]
)
def test_nul_and_lone_dots_after_bare_endings_are_refused(raw: bytes) -> None:
    with pytest.raises(RefusedError):
        normalise(raw)
