"""MAIL FROM / RCPT TO paths: the plain form read without the header parser, same answers.

The relay's SMTP session reads `<local@domain>` with relay.mail.envelope and
everything else with aiosmtpd's own `_getaddr` (the stdlib's header parser);
both must give the same (address, rest) for every argument.
"""

from __future__ import annotations

import smtplib

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.mail.envelope import plain_path
from relay.sources.smtp import RelaySMTP
from tests.conftest import PairInfo, RunningRelay, Sink, mail, wire


def _sessions(limit: int) -> tuple[RelaySMTP, SMTP]:
    # Only local_part_limit is read by _getaddr; no server is needed for this comparison.
    ours = object.__new__(RelaySMTP)
    theirs = object.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = limit
    return ours, theirs


# Characters that steer the header parser: specials, folding white space, comments,
# quotes, encoded words, a non-ASCII letter; plus a few ordinary ones.
_STEERING = "<>@.:;,()[]\"\\ \t\r\n=?!#$%&'*+/^_`{|}~-é"
_pieces = st.text(alphabet=_STEERING + "abcXYZ019", max_size=12)
_arguments = st.one_of(
    st.text(alphabet=_STEERING + "abc", max_size=30),
    st.builds(lambda a, b, c: f"<{a}@{b}>{c}", _pieces, _pieces, _pieces),
    st.builds(lambda a, b, c: f"{a}<{b}>{c}", _pieces, _pieces, _pieces),
)


@settings(max_examples=3000, deadline=None)
@given(argument=_arguments, limit=st.sampled_from([0, 3, 64]))
@example(argument="<a@b.c> SIZE=100", limit=0)
@example(argument="<a@b.c>  \t SIZE=100 BODY=8BITMIME", limit=0)
@example(argument="<a@b.c>SIZE=1", limit=0)
@example(argument="<a@b.c> (comment) SIZE=1", limit=0)
@example(argument="<a@b.c>(comment)", limit=0)
@example(argument="<a@b.c> \n X", limit=0)
@example(argument="<a@b.c>\nX", limit=0)
@example(argument="<a@b.c> \u3000X", limit=0)
@example(argument="<=?utf-8?q?a?=@b.c>", limit=0)
@example(argument="<a@=?utf-8?q?b?=>", limit=0)
@example(argument="<a..b@c>", limit=0)
@example(argument="<.a@b>", limit=0)
@example(argument="<a@b.>", limit=0)
@example(argument="<>", limit=0)
@example(argument="<> SIZE=1", limit=0)
@example(argument=" <a@b.c>", limit=0)
@example(argument="<@route:a@b.c>", limit=0)
@example(argument='<"a b"@c>', limit=0)
@example(argument="<a@[127.0.0.1]>", limit=0)
@example(argument="<abcd@b.c>", limit=3)
@example(argument="<abc@b.c>", limit=3)
def test_relay_reads_every_path_as_aiosmtpd_does(argument: str, limit: int) -> None:
    ours, theirs = _sessions(limit)
    assert _outcome(ours, argument) == _outcome(theirs, argument)


def _outcome(session: SMTP, argument: str) -> object:
    # The header parser itself raises on some garbage ("<", '"'); the same must happen.
    try:
        return session._getaddr(argument)
    except Exception as error:  # compared, not swallowed
        return type(error)


@pytest.mark.parametrize(
    ("argument", "read"),
    [
        ("<ana@mentors.example.org>", ("ana@mentors.example.org", "")),
        ("<a.b+c@d-e.f> SIZE=1024", ("a.b+c@d-e.f", "SIZE=1024")),
        ("<A@B.C>\tBODY=8BITMIME", ("A@B.C", "BODY=8BITMIME")),
    ],
)
def test_plain_paths_are_read_fast(argument: str, read: tuple[str, str]) -> None:
    assert plain_path(argument) == read


@pytest.mark.parametrize(
    "argument",
    ["", "<>", '<"a b"@c.d>', "<a@[127.0.0.1]>", "<@r.example:a@b.c>", "<a@b.c> (x)", " <a@b.c>"],
)
def test_other_paths_go_to_the_header_parser(argument: str) -> None:
    assert plain_path(argument) is None


def test_daemon_takes_plain_and_unusual_paths_alike(
    relay: RunningRelay, sink: Sink, pair: PairInfo
) -> None:
    sink.wait_for(2)  # the introductions
    with relay.smtp() as client:
        client.ehlo("client.example")
        # A plain path with a parameter, then the same sender written with a comment
        # (the header parser's path): both are the mentor, both are relayed.
        assert client.docmd(f"MAIL FROM:<{pair.mentor}> SIZE=2000")[0] == 250
        assert client.docmd(f"RCPT TO:<{pair.address}>")[0] == 250
        assert client.docmd("RSET")[0] == 250
        assert client.docmd(f"MAIL FROM:<{pair.mentor}> (hello) SIZE=2000")[0] == 250
        assert client.docmd(f"RCPT TO:<{pair.address}> (again)")[0] == 250
        assert client.docmd("DATA")[0] == 354
        message = wire(mail(pair.mentor, pair.address, "Paths"))
        client.send(message + b".\r\n")
        assert client.getreply()[0] == 250
        # Not an address at all: refused as before.
        assert client.docmd("MAIL FROM:<a@b.>")[0] == 553
    forwarded = sink.wait_for(3)
    assert [each.message["Subject"] for each in forwarded[2:]] == ["Paths"]


def test_smtplib_paths_unchanged(relay: RunningRelay, pair: PairInfo) -> None:
    with relay.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail(pair.mentor, ["nobody@elsewhere.example"], b"Subject: x\r\n\r\nx\r\n")
