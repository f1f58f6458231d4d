"""Odd mail never crashes the daemon: Python's own email test corpus and hand-made malformed mail.

Every message in the running Python's ``test/test_email/data/msg_*.txt``
(the corpus CPython's email package is tested against: broken boundaries,
odd charsets, nested messages, missing headers) goes through intake over
SMTP twice: as it is (its sender is a stranger to the pair), and with its
From replaced by the mentor's address, so that the rules, rewrite and
scrubbing run on it too. Every reply must be 250, 500 (a line over 998
characters), 550 or 552 with an enhanced status code: never a 451 from an internal error, never a dropped
connection. Whatever is held is then approved from the command line, which
runs rewrite on it as well, and the relay must still carry a plain message
afterwards.

Some distributions (Debian, Ubuntu) strip the ``test`` package from the
standard library. Then the stdlib corpus is not there and this module says
so with a warning in the test summary, and uses the tests/leak corpus in its
place; it never skips (CI counts a skip as a failure). The malformed
messages written here (bare LF, bare CR, NUL bytes, 8-bit headers, no
headers, broken MIME boundaries, very long lines, multiparts 50 deep, ...)
always run.
"""

from __future__ import annotations

import base64
import re
import smtplib
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.store import db
from relay.store.models import Message, MessageStatus
from tests.conftest import (
    Environment,
    PairInfo,
    RunningRelay,
    Sink,
    forwarding_environment,
    mail,
    make_pair,
    wait_for,
)

STDLIB_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
LEAK_CORPUS = Path(__file__).parent / "leak"
STRANGER = "stranger@elsewhere.example"
ACCEPTABLE = {250, 500, 550, 552}  # 500 5.6.0: a line over 998 characters (RFC 5321 4.5.3.1.6)
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3} ")


def stdlib_corpus() -> list[Path]:
    return sorted(STDLIB_DATA.glob("msg_*.txt"))


def corpus() -> dict[str, bytes]:
    """name -> bytes of every message this module sends, malformed ones included."""
    found = stdlib_corpus()
    if not found:
        warnings.warn(
            f"Python's email test corpus is not installed ({STDLIB_DATA} is missing; "
            "Debian-like systems strip the test package): using tests/leak instead",
            stacklevel=1,
        )
        found = sorted(LEAK_CORPUS.glob("*.eml"))
    # The files are stored with LF line ends; an MTA sends them with CRLF.
    messages = {
        f"{path.parent.name}/{path.name}": re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
        for path in found
    }
    messages.update(MALFORMED)
    return messages


# -- deliberately malformed mail ------------------------------------------------------

# Written by a stranger; the second sending puts the mentor's address in From.
_FROM = b"From: Some One <someone@elsewhere.example>"


def _nested(depth: int) -> bytes:
    head = b""
    tail = b""
    for level in range(depth):
        head += (
            f'Content-Type: multipart/mixed; boundary="level{level}"\r\n\r\n--level{level}\r\n'
        ).encode()
        tail = f"\r\n--level{level}--\r\n".encode() + tail
    return head + b"Content-Type: text/plain\r\n\r\ndeep inside ana.real@mentors.example.org" + tail


MALFORMED: dict[str, bytes] = {
    "malformed/bare_lf": _FROM + b"\nSubject: bare LF\n\nline one\nline two\n",
    "malformed/bare_lf_long": _FROM + b"\nSubject: bare LF, long\n\n" + b"a short line\n" * 200,
    "malformed/bare_cr": _FROM + b"\rSubject: bare CR\r\rline one\rline two\r",
    "malformed/mixed_line_ends": _FROM + b"\r\nSubject: mixed\n\r\none\rtwo\nthree\r\n",
    "malformed/nul_bytes": _FROM + b"\r\nSubject: nul\r\n\r\nbefore\x00after\r\n",
    "malformed/eight_bit_headers": (
        b"From: \xc3\x81na M\xe9ntor <someone@elsewhere.example>\r\n"
        b"Subject: caf\xe9 \xc3\xa9t\xc3\xa9 \xff\xfe\r\nX-Weird: \x80\x81\x82\r\n\r\nbody\r\n"
    ),
    "malformed/no_headers_at_all": b"just a body, no headers\r\n",
    "malformed/headers_only": _FROM + b"\r\nSubject: no body at all\r\n",
    "malformed/no_blank_line": _FROM + b"\r\nSubject: x\r\nthis line is not a header\r\nmore\r\n",
    "malformed/boundary_never_appears": (
        _FROM + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="nope"\r\n\r\n'
        b"text with no parts at all\r\n"
    ),
    "malformed/boundary_not_closed": (
        _FROM
        + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>"
    ),
    "malformed/multipart_without_boundary": (
        _FROM
        + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n--x--\r\n"
    ),
    "malformed/long_header_line": (_FROM + b"\r\nSubject: " + b"long " * 190 + b"\r\n\r\nbody\r\n"),
    "malformed/long_folded_header": (
        _FROM + b"\r\nX-Long:" + b"\r\n x" * 20000 + b"\r\nSubject: folded\r\n\r\nbody\r\n"
    ),
    "malformed/long_body_line": _FROM + b"\r\nSubject: long\r\n\r\n" + b"y" * 990 + b"\r\n",
    "malformed/nested_50_deep": _FROM + b"\r\nMIME-Version: 1.0\r\n" + _nested(50),
    "malformed/bad_base64_text": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64***ana.real@mentors.example.org\r\n"
    ),
    "malformed/unknown_charset": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n<p>\xe9\xff ana.real@mentors.example.org</p>\r\n"
    ),
    "malformed/lying_charset": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9\xff\xfe ana.real@mentors.example.org\r\n"
    ),
    "malformed/utf16_text": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-16\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode("hi ana.real@mentors.example.org".encode("utf-16"))
        + b"\r\n"
    ),
    "malformed/unknown_transfer_encoding": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\nend\r\n"
    ),
    "malformed/base64_message_rfc822": (
        _FROM + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"RnJvbTogYW5hLnJlYWxAbWVudG9ycy5leGFtcGxlLm9yZw0KDQpoaQ0K\r\n--m--\r\n"
    ),
    "malformed/garbage_encoded_words": (
        b"From: =?utf-8?B?!!!?= =?x-unknown?Q?=FF?= <someone@elsewhere.example>\r\n"
        b"Subject: =?utf-8?q?unterminated\r\nContent-Type: text/plain; name*=x''%ZZ\r\n\r\nbody\r\n"
    ),
    "malformed/group_and_many_from": (
        b"From: friends: someone@elsewhere.example, ben@x.example;\r\n"
        b"From: second@from.example\r\nSubject: two Froms\r\n\r\nbody\r\n"
    ),
    "malformed/garbage_dates_and_ids": (
        _FROM + b"\r\nDate: yesterday-ish\r\nMessage-ID: <<<>>>\r\nIn-Reply-To: <a@b\r\n"
        b"References: > < <>\r\nSubject: ids\r\n\r\nbody\r\n"
    ),
    "malformed/content_id_without_brackets": (
        _FROM + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        b'--r\r\nContent-Type: text/html\r\n\r\n<img src="cid:">\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <>\r\n\r\n\x89PNG\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: ana.real@mentors.example.org\r\n\r\nx\r\n--r--\r\n"
    ),
    "malformed/thousand_parts": (
        _FROM
        + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n'
        + b"".join(
            b"--p\r\nContent-Type: text/plain\r\n\r\npart ana.real@mentors.example.org\r\n"
            for _ in range(1000)
        )
        + b"--p--\r\n"
    ),
    "malformed/calendar_without_end": (
        _FROM + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nORGANIZER:mailto:ana.real@mentors.exam\r\n ple.org\r\n UID:\r\n"
    ),
}


# -- sending ------------------------------------------------------------------------------


def with_mentor_from(raw: bytes, mentor: str) -> bytes:
    """The message with every From header (and its folded lines) replaced by the mentor's."""
    parts = re.split(rb"(\r?\n\r?\n|\r\r)", raw, maxsplit=1)
    head, sep, body = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (raw, b"", b"")
    head = re.sub(rb"(?im)^from:.*(?:(?:\r\n|\r|\n)[ \t].*)*(?:\r\n|\r|\n)?", b"", head)
    return f"From: Ana Mentor <{mentor}>\r\n".encode() + head + sep + body


@dataclass
class Transaction:
    name: str
    replies: list[tuple[int, str]] = field(default_factory=list)
    dropped: str = ""

    def keep(self, code: int, text: bytes) -> None:
        self.replies.append((code, text.decode("utf-8", "replace")))

    @property
    def final(self) -> tuple[int, str]:
        return self.replies[-1] if self.replies else (0, self.dropped)


def transact(
    relay: RunningRelay, name: str, envelope_from: str, to: str, raw: bytes
) -> Transaction:
    """One SMTP transaction, every reply kept (smtplib.sendmail would hide the 250's text)."""
    seen = Transaction(name)
    try:
        with relay.smtp() as client:
            client.ehlo()
            seen.keep(*client.mail(envelope_from))
            if seen.final[0] < 400:
                seen.keep(*client.rcpt(to))
            if seen.final[0] < 400:
                seen.keep(*client.data(raw))
    except (smtplib.SMTPException, OSError) as error:
        seen.dropped = f"{type(error).__name__}: {error}"
    return seen


@dataclass
class Run:
    pair: PairInfo
    config_path: Path
    store: db.Store
    sink: Sink
    relay: RunningRelay
    transactions: dict[str, Transaction] = field(default_factory=dict)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("stdlib")
    with forwarding_environment(folder) as environment:
        yield from _run_corpus(environment)


def _run_corpus(environment: Environment) -> Iterator[Run]:
    sink, config_path, config, store = (
        environment.sink,
        environment.config_path,
        environment.config,
        environment.store,
    )
    pair = make_pair(store, config)
    relay = RunningRelay(config)
    result = Run(pair, config_path, store, sink, relay)
    try:
        for name, raw in corpus().items():
            result.transactions[name] = transact(relay, name, STRANGER, pair.address, raw)
            as_mentor = with_mentor_from(raw, pair.mentor)
            result.transactions[name + " (from the mentor)"] = transact(
                relay, name, pair.mentor, pair.address, as_mentor
            )
        yield result
    finally:
        relay.stop()


# -- the tests -------------------------------------------------------------------------------


def test_stdlib_corpus_is_used_when_installed() -> None:
    """Say plainly which corpus ran; the stdlib's has 47 messages or more when present."""
    if STDLIB_DATA.is_dir():
        assert len(stdlib_corpus()) >= 40, f"{STDLIB_DATA} holds too few msg_*.txt"
    else:
        assert len(list(LEAK_CORPUS.glob("*.eml"))) >= 40, "no stdlib corpus and no leak corpus"


def test_every_message_gets_a_clear_answer(run: Run) -> None:
    unclear = []
    for name, seen in run.transactions.items():
        code, text = seen.final
        if seen.dropped or code not in ACCEPTABLE or not _ENHANCED.match(text):
            unclear.append(f"{name}: {seen.dropped or f'{code} {text}'}")
    assert not unclear, "messages without a clear answer:\n  " + "\n  ".join(unclear)
    assert len(run.transactions) >= 2 * 40


def test_strangers_are_refused_and_the_mentor_is_heard(run: Run) -> None:
    for name, seen in run.transactions.items():
        code, text = seen.final
        if name.endswith("(from the mentor)") or code != 250:
            continue
        pytest.fail(f"{name}: a stranger's message was accepted ({code} {text})")
    accepted = [n for n, s in run.transactions.items() if s.final[0] == 250]
    # Most of the corpus is readable mail; the forwarding path must really have run.
    assert len(accepted) >= len(run.transactions) // 4


def test_nul_bytes_are_refused_as_malformed(run: Run) -> None:
    code, text = run.transactions["malformed/nul_bytes (from the mentor)"].final
    assert (code, text[:5]) == (550, "5.6.0")


def test_held_messages_can_be_approved_and_everything_is_settled(run: Run) -> None:
    with run.store.session() as session:
        held = session.scalars(select(Message.id).where(Message.status == MessageStatus.HELD)).all()
    if held:
        result = CliRunner().invoke(
            cli, ["-c", str(run.config_path), "approve", *map(str, held), "--as", "corpus"]
        )
        assert result.exit_code == 0, result.output
    with run.store.session() as session:
        statuses = set(session.scalars(select(Message.status)).all())
    assert MessageStatus.HELD not in statuses


def test_relay_still_carries_mail_afterwards(run: Run) -> None:
    with run.relay.smtp() as client:
        assert client.noop()[0] == 250
    before = len(run.sink.received)
    message = mail(run.pair.mentor, run.pair.address, "Still here?", "Yes, still working.")
    run.relay.send(message, run.pair.mentor, run.pair.address)

    def arrived() -> bool:
        return any(r.message["Subject"] == "Still here?" for r in run.sink.received[before:])

    wait_for(arrived, timeout=60, what="a plain message after the corpus")
