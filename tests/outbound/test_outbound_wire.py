"""The wire bytes of an outbound message: the relay's writer gives what the stdlib's gives.

as_outbound_bytes writes a body in one piece instead of line by line; for
every message of the corpus the odd-mail test sends (CPython's email test
corpus, or tests/leak, and the hand-made malformed mail), both as parsed and
as rewritten for the partner, the bytes must equal
``message.as_bytes(policy=SMTP_POLICY)``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.errors import RefusedError
from relay.mail import rawinput
from relay.mail.policy import SMTP_POLICY
from relay.mail.reading import parse
from relay.outbound.footer import add_footer
from relay.outbound.rewrite import RewritePlan, _with_line_ends, as_outbound_bytes, rewrite
from tests.test_stdlib_corpus import corpus

PLAN = RewritePlan(
    programme_name="Mentor Relay",
    pair_address="k7q2m9x4ab3cd@relay.test",
    sender_display_name="Ana Mentor",
    recipient_display_name="Ben Mentee",
    recipient_address="ben.real@school.example.net",
    relay_message_id="<r-2@relay.test>",
    in_reply_to=(),
    references=(),
    hidden_addresses=("ana.real@mentors.example.org", "someone@elsewhere.example"),
    loop_marker="relay.test",
)
EXTRA = {
    "line ends of every kind in one body": (
        b"From: a@b.example\r\nSubject: x\r\n\r\none\r\ntwo\nthree\rfour\r\n\r\n\nlast"
    ),
    "8-bit body, no charset": b"From: a@b.example\r\nSubject: x\r\n\r\ncaf\xe9 \xff\r\nend\r\n",
    "multipart with preamble and epilogue": (
        b'From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"'
        b"\r\n\r\npreamble\rline\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\nx\r\n"
        b"--b--\r\nepilogue\nline"
    ),
    "empty body": b"From: a@b.example\r\nSubject: x\r\n\r\n",
}
MESSAGES = {**corpus(), **EXTRA}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_outbound_bytes_are_the_stdlib_generators(name: str) -> None:
    try:
        message = parse(rawinput.normalise(MESSAGES[name]))
    except RefusedError:
        assert b"\x00" in MESSAGES[name]  # NUL bytes: refused before any copy is written
        return
    assert as_outbound_bytes(message) == message.as_bytes(policy=SMTP_POLICY)
    outbound = rewrite(message, PLAN)
    add_footer(outbound, "Messages are read by the programme's coordinators.")
    assert as_outbound_bytes(outbound) == outbound.as_bytes(policy=SMTP_POLICY)


@settings(max_examples=500)
@given(text=st.text("a\r\n", max_size=30), line_end=st.sampled_from(["\r\n", "\n", "\r"]))
def test_line_ends_are_replaced_as_the_stdlib_generator_replaces_them(
    text: str, line_end: str
) -> None:
    """Every CRLF, CR and LF becomes the policy's line end, whichever shortcut is taken."""
    assert _with_line_ends(text, line_end) == re.sub(r"\r\n|\r|\n", line_end, text)
