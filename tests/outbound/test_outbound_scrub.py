"""Scrubbing called directly: each textual form of an address, and each place it hides."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.outbound.scrub import headers_only_kept, scrub_message
from relay.outbound.scrub_forms import AT_MARKERS, char_pieces
from relay.outbound.scrub_text import (
    Scrubber,
    address_pattern,
    may_hold_address,
    replace_addresses,
)

ANA = "ana.real@mentors.example.org"
BEN = "ben.real@school.example.net"
PAIR = "k7q2m9x4ab3cd@relay.test"


@pytest.mark.parametrize(
    "written",
    [
        "ana.real@mentors.example.org",
        "ANA.Real@Mentors.Example.ORG",
        "ana.real%40mentors.example.org",  # a URL
        "ana.real%40mentors%2eexample%2eorg",
        "ana.real&#64;mentors.example.org",  # HTML entities
        "ana.real&#x40;mentors&#46;example&#x2E;org",
        "ana.real&commat;mentors&period;example.org",
        "ana.real\\u0040mentors.example.org",  # JSON
        "ana.real=40mentors.example.org",  # quoted-printable left undecoded (vCard 2.1)
        "ana.re<wbr>al@mentors.exam<wbr/>ple.org",  # Gmail's breaks in long addresses
        "ana.real\u00ad@mentors.\u200bexample.org",  # soft hyphen, zero-width space
        "ana.real&shy;@mentors.example.org",
    ],
)
def test_every_textual_form_of_an_address_is_replaced(written: str) -> None:
    text = f"write to {written} tomorrow"
    assert replace_addresses(text, [ANA], PAIR) == f"write to {PAIR} tomorrow"


def test_a_mailto_link_keeps_its_query_and_only_the_address_changes() -> None:
    html = f'<a href="mailto:{ANA}?subject=Hello%20there">mail me</a>'
    assert replace_addresses(html, [ANA], PAIR) == (
        f'<a href="mailto:{PAIR}?subject=Hello%20there">mail me</a>'
    )


def test_other_addresses_stay_and_one_containing_a_participants_goes() -> None:
    text = "bob@example.org, ana.real@mentors.example.com, x.ana.real@mentors.example.org.uk"
    # No word boundaries on purpose: hiding a little too much is the safe mistake.
    assert replace_addresses(text, [ANA], PAIR) == (
        f"bob@example.org, ana.real@mentors.example.com, x.{PAIR}.uk"
    )
    assert address_pattern([]) is None


def test_hosts_are_replaced_only_where_asked() -> None:
    scrubber = Scrubber([ANA], PAIR)
    assert (
        scrubber.text("relay via mail.mentors.example.org") == "relay via mail.mentors.example.org"
    )
    assert scrubber.hosts_too("<123@mail.mentors.example.org>") == "<123@relay.test>"
    assert scrubber.hosts_too("mentors.example.org.evil") == "mentors.example.org.evil"


def test_a_folded_vcard_address_is_found_and_the_card_refolded() -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ana\r\n"
        "NOTE:my long note that runs past the fold and names ana.real@ment\r\n"
        " ors.example.org as the way to reach me\r\nEND:VCARD\r\n"
    )
    scrubbed = Scrubber([ANA], PAIR).folded_text(card)
    unfolded = scrubbed.replace("\r\n ", "")
    assert PAIR in unfolded and "ment" + "ors.example" not in unfolded
    assert all(len(line.encode()) <= 75 for line in scrubbed.split("\r\n"))


def _message(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_scrub_message_reaches_every_part_and_keeps_untouched_ones_byte_for_byte() -> None:
    message = EmailMessage()
    message["Subject"] = "hello"
    message.set_content(f"Reply to {ANA} or {BEN}.\n")
    message.add_alternative(
        f'<p>Reply to <a href="mailto:{ANA}">me</a> <img src="cid:logo@mentors.example.org"></p>',
        subtype="html",
    )
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n" + ANA.encode(), maintype="image", subtype="png", filename="logo.png"
    )
    message.get_payload()[1]["Content-ID"] = "<logo@mentors.example.org>"
    message.add_attachment(b"notes", maintype="application", subtype="pdf", filename=f"{ANA}.pdf")
    parsed = _message(message.as_bytes())
    png_before = parsed.get_payload()[1].get_payload()

    changed = scrub_message(parsed, [ANA, BEN], PAIR)

    assert changed == 2  # the plain and the HTML text
    wire = _message(parsed.as_bytes())
    body, html = wire.get_payload()[0].get_payload()
    assert body.get_content() == f"Reply to {PAIR} or {PAIR}.\n"
    assert f"mailto:{PAIR}" in html.get_content()
    image, pdf = wire.get_payload()[1:]
    assert image.get_payload() == png_before  # binary: never rewritten
    assert image["Content-ID"].endswith("@relay.test>")
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html.get_content()
    assert pdf.get_filename() == f"{PAIR}.pdf"


def test_a_forwarded_message_keeps_only_readable_headers_scrubbed() -> None:
    inner = (
        f"Received: from [192.0.2.7] by mail.mentors.example.org\nFrom: Ana <{ANA}>\n"
        f"To: {BEN}\nSubject: about {ANA}\nMessage-ID: <1@mentors.example.org>\n"
        "X-Originating-IP: 192.0.2.7\n\nhi\n"
    ).encode()
    outer = EmailMessage()
    outer.set_content("see below")
    outer.add_attachment(_message(inner))
    parsed = _message(outer.as_bytes())

    scrub_message(parsed, [ANA, BEN], PAIR)

    wire = parsed.as_bytes()
    assert b"192.0.2.7" not in wire and b"mentors.example.org" not in wire
    forwarded = _message(wire).get_payload()[1].get_payload()[0]
    assert sorted(forwarded.keys()) == ["From", "Subject", "To"]
    assert forwarded["Subject"] == f"about {PAIR}"


def test_a_bounce_copy_of_headers_keeps_only_what_a_reader_needs() -> None:
    headers = f"Received: from x ([192.0.2.7])\nFrom: {ANA}\nSubject: hi\nX-Mailer: Y\n"
    assert headers_only_kept(headers) == f"From: {ANA}\nSubject: hi\n"


def test_nothing_to_hide_changes_nothing() -> None:
    message = EmailMessage()
    message.set_content("plain words")
    before = message.as_bytes()
    assert scrub_message(message, [], PAIR) == 0
    assert message.as_bytes() == before


def test_the_at_gate_passes_every_form_of_at_the_pattern_knows() -> None:
    """The quick "no "@" here" test must never skip text the pattern would change."""
    forms = [piece.source for piece in char_pieces("@")]
    written = {
        re.sub(r"\\(.)", r"\1", form).replace("0*", "00").replace(";?", ";") for form in forms
    }
    assert "&commat;" in written and "%40" in written and "\\x40" in written
    for at in written:
        for text in (
            f"ana.real{at}mentors.example.org",
            f"ANA.REAL{at.upper()}MENTORS.EXAMPLE.ORG",
        ):
            assert may_hold_address(text)
            assert Scrubber([ANA], PAIR).text(text) == PAIR
            assert Scrubber([ANA], PAIR).markup(f"<b>{text}</b>") == f"<b>{PAIR}</b>"
    assert not may_hold_address("ana.real at mentors.example.org" * 100)


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(["@", "&", "\\", "%", "=", "4", "0", "40", "a", " "]), max_size=12))
def test_the_at_gate_answers_as_a_search_for_every_marker(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert may_hold_address(text) == any(marker in text for marker in AT_MARKERS)
