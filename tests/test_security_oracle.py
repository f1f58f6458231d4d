"""No address oracle: no byte the relay says or sends depends on a right guess.

A mentee (or a stranger) who guesses the mentor's real address and tries it
in From, in Cc, or who probes pair addresses at RCPT must learn nothing: for
each case the test runs a right and a wrong guess against the running daemon
and compares every byte of the SMTP dialogue (tests/smtpdialogue.py) and of
everything delivered afterwards (the sink: forwards and notices).

Normalised before comparing, and only there: the relay's own random ids
(Message-ID, MIME boundary, bounce address, the pair token) and the Date a
notice was written, plus the guessed address itself where the relay quotes
it back to its sender (a notice listing the Cc it refused). No moderators are
configured, so nothing is sent to anyone but the participants.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.ops.retention import purge
from relay.store.models import (
    Message,
    MessageStatus,
    Pair,
    PairStatus,
    Participant,
    ParticipantAddress,
    SetAside,
    utcnow,
)
from tests.conftest import Sink, mail, wait_for, wire
from tests.dnsserver import LoopbackDns
from tests.smtpdialogue import dialogue

RIGHT = "ana.private@home.example"  # the mentor's second, registered address
WRONG = "ana.privat@home.example"  # one letter off: nobody's


def setup(configured, sink: Sink, dns: LoopbackDns):
    zone = dns.zone
    zone.txt("school.example.net", "v=spf1 ip4:127.0.0.1 -all")  # the mentee, on loopback
    zone.txt("home.example", "v=spf1 ip4:192.0.2.20 -all")
    zone.txt("_dmarc.home.example", "v=DMARC1; p=reject")
    zone.txt("mentors.example.org", "v=spf1 ip4:192.0.2.10 -all")
    relay, pair, store = configured(
        rules='disable = ["new_pair"]\n[rules.authentication]\nmode = "verify"\n' + dns.settings()
    )
    with store.session() as session:
        mentor = session.scalars(select(Participant).where(Participant.email == pair.mentor)).one()
        session.add(ParticipantAddress(participant_id=mentor.id, email=RIGHT))
    sink.wait_for(2)  # the two introductions, before any probe
    return relay, pair, store


def normalised(data: bytes, *guesses: str) -> bytes:
    data = re.sub(rb"<(?:notice\.)?[0-9a-f]{16,}@relay\.test>", b"<ID@relay.test>", data)
    data = re.sub(rb"bounce-[0-9a-f]+-[0-9a-f]+@", b"bounce-X@", data)
    data = re.sub(rb"=+_?\d+==|boundary=\"[^\"]+\"", b"BOUNDARY", data)
    data = re.sub(rb"(?m)^Date: [^\r\n]*", b"Date: DATE", data)
    data = re.sub(rb"[23456789a-hjkmnp-z]{13}@relay\.test", b"PAIR@relay.test", data)
    for guess in guesses:
        data = data.replace(guess.encode(), b"GUESS")
    return data


def without_number(data: bytes, number: int) -> bytes:
    return data.replace(b"sentinel %d" % number, b"sentinel")


def delivered_after(sink: Sink, before: int, sentinel_to: str) -> list[tuple[str, bytes]]:
    """Everything delivered since `before`, once the sentinel has arrived.

    The delivery worker sends the outbox in order, so when the sentinel (sent
    last) is at the sink, anything the probe queued is there too.
    """
    wait_for(lambda: any("sentinel" in str(r.message["Subject"]) for r in sink.received[before:]))
    return [(",".join(r.recipients), r.data) for r in sink.received[before:]]


def probe_then_sentinel(relay, sink, pair, envelope_from, data, sentinel_number):
    before = len(sink.received)
    said = dialogue(relay.port, envelope_from, [pair.address], data)
    sentinel = mail(pair.mentee, pair.address, f"sentinel {sentinel_number}")
    relay.send(sentinel, pair.mentee, pair.address)
    return said, delivered_after(sink, before, pair.mentor)


def guess_message(sender: str, pair_address: str, **headers: str) -> bytes:
    message = mail(sender, pair_address, "Is this you?", "Just checking.", **headers)
    message["Message-ID"] = "<probe@school.example.net>"
    message["Date"] = "Sun, 29 Nov 2026 06:00:00 +0000"
    return wire(message)


def test_a_guessed_from_gets_the_same_answer_right_or_wrong(configured, sink: Sink, dns):
    relay, pair, store = setup(configured, sink, dns)
    results = {}
    for number, guess in enumerate((RIGHT, WRONG, "nobody@elsewhere.example")):
        data = guess_message(guess, pair.address)
        said, delivered = probe_then_sentinel(relay, sink, pair, pair.mentee, data, number)
        results[guess] = (
            said,
            [(to, without_number(normalised(d), number)) for to, d in delivered],
        )
    assert results[RIGHT][0].count(b"250 2.0.0 OK") == 1
    assert results[RIGHT] == results[WRONG] == results["nobody@elsewhere.example"]
    # What was delivered, each time: the sentinel, and nothing else.
    assert [to for to, _ in results[RIGHT][1]] == [pair.mentor]
    with store.session() as session:
        # Kept for moderators: the right guess held (with why), the wrong ones set aside.
        held = session.scalars(select(Message).where(Message.status == MessageStatus.HELD)).one()
        assert "From home.example is not authenticated" in held.hits
        assert [row.from_address for row in session.scalars(select(SetAside))] == [
            WRONG,
            "nobody@elsewhere.example",
        ]
    listed = CliRunner().invoke(cli, ["-c", str(relay.config.source), "set-aside"])
    assert listed.exit_code == 0 and WRONG in listed.output
    assert "the From names no participant of this pair" in listed.output
    shown = CliRunner().invoke(cli, ["-c", str(relay.config.source), "set-aside", "--show", "1"])
    assert "Subject: Is this you?" in shown.output
    # Retention: once the pair has ended, `relay purge` forgets set-aside mail too.
    with store.session() as session:
        ended = session.scalars(select(Pair)).one()
        ended.status, ended.ended_at = PairStatus.ENDED, utcnow() - timedelta(days=2)
        purge(session, timedelta(days=1))
    with store.session() as session:
        assert {row.raw for row in session.scalars(select(SetAside))} == {b""}


def test_a_guessed_cc_gets_the_same_answer_right_or_wrong(configured, sink: Sink, dns):
    relay, pair, _ = setup(configured, sink, dns)
    results = {}
    for number, guess in enumerate((RIGHT, WRONG)):
        data = guess_message(pair.mentee, pair.address, Cc=guess)
        said, delivered = probe_then_sentinel(relay, sink, pair, pair.mentee, data, number)
        results[guess] = (
            said,
            [(to, without_number(normalised(d, guess), number)) for to, d in delivered],
        )
    assert b"550 5.7.1 message names a recipient outside the pair" in results[RIGHT][0]
    assert results[RIGHT] == results[WRONG]
    # The sender is told which address was refused (their own words), nobody else hears.
    assert sorted(to for to, _ in results[RIGHT][1]) == sorted([pair.mentee, pair.mentor])


def test_rcpt_for_an_ended_pair_answers_as_for_an_unknown_one(configured, sink: Sink, dns):
    relay, pair, store = setup(configured, sink, dns)
    with store.session() as session:
        session.scalars(select(Pair)).one().status = PairStatus.ENDED
    ended = dialogue(relay.port, pair.mentee, [pair.address], None)
    unknown = dialogue(relay.port, pair.mentee, ["zzzzzzzzzzzzz@relay.test"], None)
    assert b"550 5.1.1 unknown pair address" in ended
    assert ended == unknown


def test_bounce_addresses_do_not_count_the_mail_sent(configured, sink: Sink, dns):
    relay, pair, _ = setup(configured, sink, dns)
    for number in range(4):
        relay.send(mail(pair.mentee, pair.address, f"m{number}"), pair.mentee, pair.address)
    sink.wait_for(6)  # two introductions, four forwards
    sealed = [int(r.envelope_from.split("-")[1], 16) for r in sink.received]
    # Consecutive outbox rows get unrelated-looking ids: no counter to read off.
    for first, second in itertools.pairwise(sealed):
        assert bin(first ^ second).count("1") >= 8, (hex(first), hex(second))
    assert len(set(sealed)) == len(sealed)
