"""Quoted-printable bodies written by relay.mail.quoted_printable: the stdlib's strings exactly.

replace_text writes a quoted-printable text part's payload with
relay.mail.quoted_printable.body instead of set_content's encoder. For any
bytes and line width it must give what ``email.quoprimime.body_encode``
gives set_content, and a part rewritten by replace_text must be the part
``set_content`` alone makes, byte for byte.
"""

from __future__ import annotations

from email import message_from_bytes, quoprimime
from email.message import EmailMessage

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.mail import quoted_printable
from relay.mail.parts import decode_text, replace_text
from relay.mail.policy import POLICY, SMTP_POLICY


def _stdlib(data: bytes, width: int) -> str:
    """set_content's quoted-printable payload (email.contentmanager._encode_text)."""
    return quoprimime.body_encode((b"\n".join(data.splitlines()) + b"\n").decode("latin-1"), width)


_PIECES = st.sampled_from(
    [b"a", b" ", b"\t", b"=", b"\r\n", b"\n", b"\r", b"\xc3\xa9", b"\xe2\x80\x99", b"x" * 70,
     b"\x0b", b"\x0c", b"\x1c", b"\x85", b"\x00", b"~", b".", b"=\n", b" \n"]
)  # fmt: skip


@settings(max_examples=4000)
@given(
    st.one_of(st.lists(_PIECES, max_size=60).map(b"".join), st.binary(max_size=400)),
    st.integers(4, 100),
)
@example(b"", 76)
@example(b"x" * 74 + b" \n", 76)
@example(b"x" * 75 + b" ", 76)
@example(b"x" * 73 + b"=" + b"y" * 10, 76)
def test_the_body_is_the_stdlibs(data: bytes, width: int) -> None:
    assert quoted_printable.body(data, width) == _stdlib(data, width)


_LETTER = st.lists(
    st.sampled_from([*"abc XYZ.=\t\n", "\r\n", "é", "’", "—", "€", "ü", "日", "x" * 80]),
    max_size=80,
).map("".join)


@settings(max_examples=800)
@given(_LETTER, st.sampled_from(["utf-8", "iso-8859-1", "windows-1252"]))
@example("caf\u00e9 " * 40 + "\n" + "x" * 200 + " \n", "utf-8")
def test_headers_then_payload_make_the_part_set_content_makes(text: str, charset: str) -> None:
    try:
        encoded = text.encode(charset)
    except UnicodeEncodeError:
        encoded = b""  # replace_text would take UTF-8 then; this charset cannot hold it
    text = encoded.decode(charset)
    stdlib, ours = EmailMessage(policy=POLICY), EmailMessage(policy=POLICY)
    stdlib.set_content(text, subtype="plain", charset=charset, cte="quoted-printable")
    ours.set_content("", subtype="plain", charset=charset, cte="quoted-printable")
    ours.set_payload(quoted_printable.body(encoded, 78))
    assert list(ours.raw_items()) == list(stdlib.raw_items())
    assert ours.as_bytes(policy=SMTP_POLICY) == stdlib.as_bytes(policy=SMTP_POLICY)


@settings(max_examples=300)
@given(_LETTER.filter(bool))
def test_replace_text_writes_text_that_reads_back(text: str) -> None:
    source = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\nContent-ID: <c@x>\r\n\r\nold\r\n"
    )
    part = message_from_bytes(source, policy=POLICY)
    assert isinstance(part, EmailMessage)
    replace_text(part, text)
    # set_content writes lines ending in one line end, the last one too.
    assert decode_text(part) == "".join(line + "\n" for line in text.splitlines())
    assert part["Content-ID"] == "<c@x>" and part.get_param("format") == "flowed"
