"""The relay's email policy: a short ASCII header it sets is kept as written.

Such a header is written out without being parsed and folded, which must give the
very bytes that parsing and folding give (what the policy did before), and must
read back as the same parsed value.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mail import policy as relay_policy
from relay.mail.policy import POLICY, message_id_text

HEADERS = [
    ("From", '"Mentor via Bench" <abc@relay.bench>'),
    ("From", "Mentor via Bench <abc@relay.bench>"),
    ("From", '"Smith, John" <j@x.org>'),
    ("From", "a@b (comment)"),
    ("From", "undisclosed-recipients:;"),
    ("From", "Bad <<a@b>>"),
    ("From", "Ann <a@b>, Bob <b@c>"),
    ("To", "Group: a@b, c@d;"),
    ("Reply-To", "x" * 60 + "@b.org"),
    ("Message-ID", "<abc.def@relay.bench>"),
    ("Message-ID", "<a@b> <c@d>"),  # parsing keeps only the first: so it is parsed
    ("Message-ID", "<<<>>>"),
    ("Message-ID", "<0f3a9c2e5b7d41a6@relay.bench>"),  # the relay's own: kept as written
    ("Message-ID", "<a..b@c>"),  # not a dot-atom: parsed
    ("Message-ID", "<a@[127.0.0.1]>"),
    ("Message-ID", "<=?utf-8?q?a?=@b>"),
    ("Message-ID", " <a@b>"),
    ("Message-ID", "<a@b> (comment)"),
    ("message-id", "<a.b@c.d>"),
    ("In-Reply-To", "<a@b> <c@d>"),
    ("References", " ".join(f"<{i}abcdefgh@host.example>" for i in range(6))),
    ("Subject", "How is school going?"),
    ("Subject", "=?utf-8?q?caf=C3=A9?="),
    ("Subject", "=?bogus"),
    ("Subject", "x" * 75),
    ("Subject", "a  double  space, trailing "),
    ("Subject", "café"),
    ("Date", "Sun, 29 Nov 2026 08:00:00 +0000"),
    ("Date", "garbage date"),  # parsing prints it empty: so it is parsed
    ("MIME-Version", "1.0 (comment)"),
    ("Content-Type", "text/plain; charset=utf-8"),  # parsing quotes the charset
    ("Content-Type", 'multipart/alternative; boundary="===abc=="'),
    ("Content-Transfer-Encoding", "quoted-printable"),
    ("X-Loop", "relay.bench"),
    ("X-Empty", ""),
]


def _wire(name: str, value: str, *, as_written: bool) -> bytes:
    message = EmailMessage(policy=POLICY)
    if as_written:
        message[name] = value
    else:  # what the policy stored before: the parsed header
        parsed = relay_policy._parse(POLICY.header_factory, name, value)
        message._headers.append((name, parsed))  # type: ignore[attr-defined]
    message.set_payload("body\n")
    return message.as_bytes(policy=policy.SMTP)


@pytest.mark.parametrize(("name", "value"), HEADERS)
def test_a_header_set_is_written_as_parsing_and_folding_would_write_it(name: str, value: str):
    assert _wire(name, value, as_written=True) == _wire(name, value, as_written=False)


@pytest.mark.parametrize(("name", "value"), HEADERS)
def test_a_header_set_reads_back_parsed(name: str, value: str):
    message = EmailMessage(policy=POLICY)
    message[name] = value
    fetched = message[name]
    assert hasattr(fetched, "name")  # a header object, as before
    assert str(fetched) == str(relay_policy._parse(POLICY.header_factory, name, value))


def test_a_header_with_a_line_break_is_still_refused():
    message = EmailMessage(policy=POLICY)
    with pytest.raises(ValueError):
        message["Subject"] = "hello\r\nBcc: someone@example.org"


FOLDED = [
    ("Content-Type", 'text/plain; charset="utf-8"; format=flowed'),
    ("Content-Type", "multipart/mixed; boundary=" + "b" * 90),
    ("MIME-Version", "1.0"),
    ("Date", "Sun, 29 Nov 2026 09:50:00 +0000"),
    ("Subject", "Caf\u00e9 " * 30),
    ("To", ", ".join(f"Person {n} <p{n}@example.org>" for n in range(8))),
]


@pytest.mark.parametrize(("name", "value"), FOLDED)
def test_a_parsed_header_folds_as_the_stdlib_folds_it_each_time(name: str, value: str):
    """Its fold is remembered per header object: the same bytes under every policy, again."""
    header = relay_policy._parse(POLICY.header_factory, name, value)
    for stdlib, ours in (
        (policy.SMTP, relay_policy.SMTP_POLICY),
        (policy.default, POLICY),
        (policy.SMTP.clone(max_line_length=40), relay_policy.SMTP_POLICY.clone(max_line_length=40)),
        (policy.SMTPUTF8, relay_policy.SMTP_POLICY.clone(utf8=True)),
    ):
        expected = stdlib.fold_binary(name, stdlib.header_factory(name, value))
        assert ours.fold_binary(name, header) == expected
        assert ours.fold_binary(name, header) == expected  # from what it remembered


def test_a_unique_header_set_twice_is_still_refused():
    message = EmailMessage(policy=POLICY)
    message["To"] = "a@example.org"
    message["X-Note"] = "one"
    message["X-Note"] = "two"  # any number of these
    with pytest.raises(ValueError, match="at most 1"):
        message["to"] = "b@example.org"


_ID_TEXT = st.text(alphabet='abcXY09.-_+=?!<>@[] \t()"\\é', max_size=16)
_message_ids = st.one_of(
    _ID_TEXT,
    st.builds(lambda a, b: f"<{a}@{b}>", _ID_TEXT, _ID_TEXT),
    st.builds(lambda a, b, c: f"{c}<{a}@{b}>{c}", _ID_TEXT, _ID_TEXT, st.sampled_from(["", " "])),
)


@settings(max_examples=1500, deadline=None)
@given(value=_message_ids)
def test_any_message_id_set_is_written_and_read_as_parsing_gives(value: str):
    if "\n" in value or "\r" in value or not value.strip():
        return
    assert _wire_or_error(value, as_written=True) == _wire_or_error(value, as_written=False)
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = value
    assert str(message["Message-ID"]) == str(
        relay_policy._parse(POLICY.header_factory, "Message-ID", value)
    )


def _wire_or_error(value: str, *, as_written: bool) -> object:
    try:
        return _wire("Message-ID", value, as_written=as_written)
    except UnicodeError as error:  # non-ASCII under policy.SMTP: both ways alike
        return type(error)


@settings(max_examples=1500, deadline=None)
@given(value=_message_ids, folded=st.booleans())
def test_the_received_message_id_reads_as_parsing_gives(value: str, folded: bool):
    raw = value.replace(" ", "\r\n ", 1) if folded else value
    if "\n" in value or "\r" in value:
        return
    received = message_from_bytes(
        b"From: a@b\r\nMessage-ID: " + raw.encode() + b"\r\nMessage-ID: <second@x>\r\n\r\nbody\r\n",
        policy=POLICY,
    )
    assert message_id_text(received) == str(received.get("Message-ID", ""))


def test_a_message_without_message_id_reads_empty():
    received = message_from_bytes(b"From: a@b\r\n\r\nbody\r\n", policy=POLICY)
    assert message_id_text(received) == ""
