"""The raw bytes' policy called directly: line endings made CRLF, NUL and smuggling refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


_SMUGGLED_END = re.compile(rb"(\r\n|\r|\n)\.(?=(\r\n|\r|\n))")


def _every_check(raw: bytes) -> bytes | None:
    """The policy with every check run on every message (None: refused)."""
    if b"\x00" in raw:
        return None
    for match in _SMUGGLED_END.finditer(raw):
        if match.group(1) != b"\r\n" or match.group(2) != b"\r\n":
            return None
    return re.sub(rb"\r(?!\n)|(?<!\r)\n", b"\r\n", raw)


@settings(max_examples=3000)
@given(st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b".", b"a", b"\x00"]), max_size=30))
def test_the_shortcuts_decide_as_every_check_does(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    try:
        result: bytes | None = normalise(raw)
    except RefusedError:
        result = None
    assert result == _every_check(raw)
