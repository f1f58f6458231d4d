"""Rendering the forward the faster way gives the same bytes as before.

replace_text writes text parts without set_content's header round trips, and
rewrite copies the message's structure instead of deep-copying it. Each part,
and each whole forward (rules aside: rewrite, scrubbing, footer, wire form),
is made twice: the way it is now, and the old way (the replace_text kept
verbatim in tests/mail/replace_text_reference.py, and copy.deepcopy).
Boundaries come from the stdlib's random generator, so both renderings run
from the same seed. The two must be equal byte for byte.
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relay.mail.parts
import relay.outbound.rewrite
from relay.config import Config, config_from_mapping
from relay.delivery.forwarding import forward_row
from relay.mail.parts import decode_text, replace_text
from relay.mail.reading import parse
from relay.outbound.rewrite import as_outbound_bytes
from tests.mail.replace_text_reference import reference_replace_text

MENTOR, MENTEE = "ana@mentor.example", "bo@mentee.example"
HEAD = (
    f"From: Ana <{MENTOR}>\r\nTo: <pair1@relay.example>\r\n"
    "Date: Mon, 30 Nov 2026 09:12:00 +0100\r\nMessage-ID: <m1@mentor.example>\r\n"
)
QUOTED_REPLY = (
    "Sounds good.\r\n\r\n-----Original Message-----\r\n"
    f"From: Bo <{MENTEE}>\r\nSent: Monday\r\nTo: pair1@relay.example\r\nSubject: plan\r\n\r\n"
    f"> On Mon, Bo <{MENTEE}> wrote:\r\n> see you Thursday\r\n"
)

MESSAGES = {
    "plain": HEAD + "Subject: hi\r\n\r\n" + "X" * 78 + "\r\n" * 2,
    "plain with a charset and format=flowed": HEAD
    + 'Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset="UTF-8"; '
    "format=flowed; delsp=yes\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello \r\nthere\r\n",
    "alternative": HEAD
    + 'Subject: Re: plan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b1"'
    '\r\n\r\n--b1\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
    + QUOTED_REPLY
    + '\r\n--b1\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n<html><body><div>Sounds good'
    f'</div><a href="mailto:{MENTEE}">{MENTEE}</a></body></html>\r\n--b1--\r\n',
    "latin-1 quoted-printable": HEAD + "Subject: =?iso-8859-1?q?caf=E9?=\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
    "\r\n\r\nTr=E8s bien, caf=E9 =E0 deux.\r\n" + "Long " * 40 + "\r\n",
    "utf-8 base64 Cyrillic": HEAD
    + "Subject: privet\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\n"
    + "0J/RgNC40LLQtdGCLCDQutCw0Log0LTQtdC70LA/IA0K0JTQviDRh9C10YLQstC10YDQs9CwIQ0K\r\n",
    "non-ASCII into us-ascii": HEAD
    + "Subject: hi\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\ncaf\xc3\xa9\r\n",
    "attachments": HEAD
    + 'Subject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
    "--m\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Language: en\r\n\r\nSee attached.\r\n"
    '--m\r\nContent-Type: text/plain; name="notes.txt"\r\nContent-Disposition: attachment; '
    f'filename="notes.txt"\r\n\r\nmy address is {MENTOR}\r\n'
    "--m\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n"
    "Content-ID: <cal1@mentor.example>\r\n\r\nBEGIN:VCALENDAR\r\nORGANIZER:mailto:"
    + MENTOR
    + "\r\nEND:VCALENDAR\r\n"
    '--m\r\nContent-Type: application/pdf; name="r\xc3\xa9sum\xc3\xa9.pdf"\r\n'
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m--\r\n",
    "html only with a body end": HEAD
    + "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=windows-1252\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n<html><body><p>=93quoted=94 "
    f"{MENTOR}</p></BODY></html>\r\n",
    "related with an inline image": HEAD
    + 'Subject: pic\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
    '--r\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n<p>look <img src="cid:i1"></p>\r\n'
    "--r\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64"
    "\r\n\r\niVBORw0KGgo=\r\n--r--\r\n",
    "a forwarded message": HEAD
    + 'Subject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="f"\r\n\r\n'
    "--f\r\nContent-Type: text/plain\r\n\r\nFYI\r\n--f\r\nContent-Type: message/rfc822\r\n\r\n"
    f"From: Bo <{MENTEE}>\r\nSubject: old\r\n\r\nold text {MENTEE}\r\n--f--\r\n",
}


@pytest.fixture
def reference_way(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every module that writes through replace_text, made to use the reference."""
    names = [
        module
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("relay.")
        and getattr(module, "replace_text", None) is replace_text
    ]
    assert relay.mail.parts in names and len(names) > 2  # footer and scrubbing at least
    yield
    for module in names:
        monkeypatch.setattr(module, "replace_text", reference_replace_text)
    monkeypatch.setattr(relay.outbound.rewrite, "copy_structure", copy.deepcopy)


def _forward(config: Config, raw: bytes, seed: int) -> bytes:
    original = parse(raw)
    before = _state(original)
    random.seed(seed)  # the generator's boundaries
    row, _ = forward_row(
        config,
        original,
        token="pair1",
        sender_name="Ana",
        recipient_name="Bo",
        recipient_address=MENTEE,
        relay_message_id="<r1@relay.example>",
        thread=(("<x@relay.example>",), ("<x@relay.example>",)),
        hidden=(MENTOR, MENTEE),
    )
    content = row["content"]
    assert isinstance(content, bytes)
    # The rewrite works on a copy: the parsed message intake holds is as it was.
    assert _state(original) == before
    return content


def _state(message: Message) -> list[tuple[list[tuple[str, str]], object]]:
    return [
        ([(name, str(value)) for name, value in part.raw_items()], part.get_payload())
        for part in message.walk()
    ]


@pytest.mark.parametrize("strip", [False, True], ids=["keep-remote", "strip-remote"])
@pytest.mark.parametrize("name", list(MESSAGES))
def test_forward_is_the_same_bytes_as_before(
    name: str, strip: bool, request: pytest.FixtureRequest
) -> None:
    document = {
        "relay": {"domain": "relay.example"},
        "safeguarding": {"footer": "Read by the coordinators."},
        "rules": {"links": {"remote_content": "strip" if strip else "hold"}},
    }
    config = config_from_mapping(document, Path("relay.toml"), {})
    raw = MESSAGES[name].encode("latin-1")
    new = _forward(config, raw, seed=7)
    request.getfixturevalue("reference_way")
    old = _forward(config, raw, seed=7)
    assert new == old
    texts = [decode_text(part) for part in parse(new).walk() if not part.is_multipart()]
    assert any("Read by the coordinators." in text for text in texts)


_PARAM_VALUES = st.one_of(
    st.sampled_from(["flowed", "yes", "REQUEST", "notes.txt", "a b", 'q"uote', "back\\slash", ""]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(
    subtype=st.sampled_from(["plain", "html", "calendar", "x-vcard", "plain;", "pl ain"]),
    charset=st.sampled_from([None, "utf-8", "UTF-8", "iso-8859-1", "latin_1", "us-ascii",
                             "windows-1252", "utf-16", "koi8-r", "bogus", '"utf-8"']),
    params=st.dictionaries(st.sampled_from(["format", "delsp", "name", "method", "x-mac"]),
                           _PARAM_VALUES, max_size=3),
    disposition=st.sampled_from([None, "inline", "attachment"]),
    extra=st.sampled_from([(), ("Content-ID", "<c1@x>"), ("Content-Language", "fr")]),
    top=st.booleans(),
    text=st.text(max_size=300),
)  # fmt: skip
def test_a_part_is_the_same_bytes_as_before(
    subtype: str,
    charset: str | None,
    params: dict[str, str],
    disposition: str | None,
    extra: tuple[str, ...],
    top: bool,
    text: str,
) -> None:
    header = f"text/{subtype}"
    if charset:
        header += f"; charset={charset}"
    for key, value in params.items():
        header += f'; {key}="{value}"'
    head = "Subject: s\r\nMIME-Version: 1.0\r\n" if top else ""
    head += f"Content-Type: {header}\r\nContent-Transfer-Encoding: 7bit\r\n"
    if disposition:
        head += f'Content-Disposition: {disposition}; filename="f\u00e9.txt"\r\n'
    if extra:
        head += f"{extra[0]}: {extra[1]}\r\n"
    raw = (head + "\r\nold text\r\n").encode("utf-8")
    new, old = parse(raw), parse(raw)
    replace_text(new, text)
    reference_replace_text(old, text)
    assert list(new.keys()) == list(old.keys())
    assert as_outbound_bytes(new) == as_outbound_bytes(old)
