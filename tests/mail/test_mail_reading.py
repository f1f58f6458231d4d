"""parse(): a single part's body set without the line-by-line read, the same message as before.

relay.mail.reading.parse gives the stdlib parser only the header section of
a message whose body it would keep in one piece. The parsed message must be
the one the whole parse gives: same headers, defects, payload, and the same
bytes written back, for generated messages (headers, folds, lines that are
no header, empty header sections, bare line ends, MIME types, 8-bit bytes)
and for every message in the Python email test corpus and tests/leak.
"""

from __future__ import annotations

import sysconfig
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.mail import reading
from relay.mail.policy import POLICY, SMTP_POLICY
from relay.mail.rawinput import normalise


def _whole(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=POLICY)
    assert isinstance(message, EmailMessage)
    return message


def _signature(message: EmailMessage) -> object:
    """What a reader of the parsed message can see."""
    try:
        written: object = message.as_bytes(policy=SMTP_POLICY)
    except Exception as error:  # the same failure either way is the same message
        written = type(error)
    parts = [
        (
            part.get_unixfrom(),
            list(part.raw_items()),
            [type(defect) for defect in part.defects],
            None if part.is_multipart() else part.get_payload(),
            part.preamble,
            part.epilogue,
        )
        for part in message.walk()
    ]
    return written, parts


def _same_as_whole(raw: bytes) -> None:
    assert _signature(reading.parse(raw)) == _signature(_whole(raw))


_HEADER_LINES = st.sampled_from(
    [
        b"From: a@example.org",
        b"To: b@example.org",
        b"Subject: hello",
        b"Subject: =?utf-8?q?caf=C3=A9?=",
        b"Subject: caf\xc3\xa9",
        b" folded on",
        b"\tfolded too",
        b"not a header",
        b"X-Empty:",
        b"From nobody Mon Jan  1 00:00:00 2024",
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Type: text/html",
        b"Content-Type: multipart/mixed; boundary=xyz",
        b"Content-Type: multipart/alternative",
        b"Content-Type: message/rfc822",
        b"Content-Type: message/delivery-status",
        b"Content-Type: application/octet-stream",
        b"Content-Type: multipart",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Transfer-Encoding: base64",
        b"",
    ]
)
_BODY_LINES = st.sampled_from(
    [b"hello", b"", b"--xyz", b"--xyz--", b".", b"Subject: not a header here", b"caf\xc3\xa9"]
)
_ENDINGS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    lines = [*draw(st.lists(_HEADER_LINES, max_size=8)), b""]
    lines += draw(st.lists(_BODY_LINES, max_size=8))
    endings = draw(st.lists(_ENDINGS, min_size=len(lines), max_size=len(lines)))
    raw = b"".join(line + ending for line, ending in zip(lines, endings, strict=True))
    return raw[: len(raw) - draw(st.integers(0, 2))]  # maybe no final line end


@settings(max_examples=1500, deadline=None)
@given(_messages())
@example(b"From: a@example.org\r\n\r\nbody\r\n")
@example(b"\r\n\r\nbody\r\n")
@example(b"\r\nFrom: a@example.org\r\n\r\nbody\r\n")
@example(b"From: a@example.org\r\nnot a header\r\n\r\nbody\r\n")
@example(b"From: a@example.org\r\n\r\n")
@example(b"From: a@example.org\r\nContent-Type: message/rfc822\r\n\r\nFrom: b\r\n\r\nx\r\n")
def test_parse_gives_what_the_whole_parse_gives(raw: bytes) -> None:
    _same_as_whole(raw)


def _corpus() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    leak = Path(__file__).resolve().parents[1] / "leak"
    return sorted(stdlib.glob("msg_*.txt")) + sorted(leak.rglob("*.eml"))


@pytest.mark.parametrize("path", _corpus(), ids=lambda path: path.name)
def test_corpus_messages_parse_as_before(path: Path) -> None:
    raw = path.read_bytes()
    _same_as_whole(raw)
    _same_as_whole(normalise(raw.replace(b"\x00", b"")))  # as intake stores it


def test_a_single_part_takes_the_short_way() -> None:
    # Not a timing: the short way is taken (and so tested above) for the usual letter.
    raw = b"From: a@example.org\r\nSubject: hi\r\n\r\n" + b"line\r\n" * 100
    assert reading._single_part(raw) is not None
    assert reading._single_part(b"Content-Type: multipart/mixed\r\n\r\n--x\r\n") is None
