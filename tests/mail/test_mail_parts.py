"""relay.mail.parts: one reading of a part for the rules, the scrubber and redaction."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mail.parts import _transfer_encoding, decode_text, replace_text
from relay.mail.text import MailView
from relay.outbound.scrub import scrub_message

ANA = "ana@example.org"
PAIR = "k7q2m9x4@relay.example"

# Windows-1252 bytes (curly quotes, en dashes, the euro sign, one of the five
# bytes cp1252 leaves undefined) under a charset no codec knows.
UNKNOWN_CHARSET = (
    b"From: Ana <ana@example.org>\nTo: k7q2m9x4@relay.example\nSubject: hi\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: text/plain; charset="x-mac-klingon"\n'
    b"Content-Transfer-Encoding: 8bit\n\n"
    b"\x93Write to ana@example.org\x94 \x96 or call 07700\x96900123, \x8010 \x81\n"
)
READ_AS = "\u201cWrite to ana@example.org\u201d \u2013 or call 07700\u2013900123, \u20ac10 \x81\n"


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_rules_and_scrubber_read_a_part_with_an_unknown_charset_alike() -> None:
    message = _parse(UNKNOWN_CHARSET)
    rules_text = MailView.from_message(message).parts[0].text
    assert rules_text == READ_AS
    assert decode_text(message) == rules_text

    changed = scrub_message(message, [ANA], PAIR)

    assert changed == 1
    scrubbed = _parse(message.as_bytes())
    # Everything but the address is what the rules read: the scrubber saw the same text.
    assert scrubbed.get_content() == rules_text.replace(ANA, PAIR)
    assert b"ana@example.org" not in message.as_bytes().split(b"\n\n", 1)[1]
    assert scrubbed.get_content_charset() == "utf-8"


def test_every_byte_survives_the_fallback() -> None:
    data = bytes(range(256))
    part = EmailMessage()
    part["Content-Type"] = 'text/plain; charset="x-unknown"'
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.b64encode(data).decode())
    text = decode_text(part)
    assert len(text) == 256 and len(set(text)) == 256
    assert text[:128] == data[:128].decode("ascii")


def test_a_declared_charset_is_kept_when_the_new_text_fits_it() -> None:
    message = _parse(
        b"Subject: x\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=iso-8859-1; format=flowed; x-tracking=abc\n"
        b"Content-Transfer-Encoding: 8bit\n\nTr\xe8s bien, ana@example.org\n"
    )
    replace_text(message, "Tr\u00e8s bien, " + PAIR + "\n")
    again = _parse(message.as_bytes())
    assert again.get_content_charset() == "iso-8859-1"
    assert again.get_content() == "Tr\u00e8s bien, " + PAIR + "\n"
    assert again.get_param("format") == "flowed"
    assert again.get_param("x-tracking") is None  # unknown parameters go, by allow-list


def test_a_charset_that_cannot_hold_the_text_becomes_utf8() -> None:
    message = _parse(
        b"Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nhello\n"
    )
    replace_text(message, "\u00e9t\u00e9 \u2013 \u20ac\n")
    again = _parse(message.as_bytes())
    assert again.get_content_charset() == "utf-8"
    assert again.get_content() == "\u00e9t\u00e9 \u2013 \u20ac\n"


def test_a_textual_attachment_keeps_its_type_name_and_content_id() -> None:
    outer = EmailMessage()
    outer.set_content("see the card")
    outer.add_attachment(
        b"BEGIN:VCARD\r\nEMAIL:ana@example.org\r\nEND:VCARD\r\n",
        maintype="application",
        subtype="octet-stream",
        filename="ana.vcf",
        cid="<card@example.org>",
    )
    card = _parse(outer.as_bytes()).get_payload()[1]
    replace_text(card, "BEGIN:VCARD\r\nEND:VCARD\r\n")
    assert card.get_content_type() == "application/octet-stream"
    assert card.get_filename() == "ana.vcf"
    assert card["Content-ID"] == "<card@example.org>"
    assert card.get_content() == b"BEGIN:VCARD\r\nEND:VCARD\r\n"


_LINES = st.lists(st.integers(0, 1100), max_size=4).map(lambda ns: b"\n".join(b"a" * n for n in ns))


@settings(max_examples=300)
@given(
    data=st.one_of(st.binary(max_size=200), _LINES, st.tuples(_LINES, st.binary()).map(b"".join))
)
def test_transfer_encoding_is_the_lightest_that_fits(data: bytes) -> None:
    """7bit for ASCII lines of up to 998 bytes, base64 when over a third of the bytes
    are 8-bit, quoted-printable otherwise."""
    lines_fit = all(len(line) <= 998 for line in data.splitlines())
    high = sum(1 for byte in data if byte > 127)
    if data.isascii() and lines_fit:
        expected = "7bit"
    else:
        expected = "base64" if high * 3 > len(data) else "quoted-printable"
    assert _transfer_encoding(data) == expected
