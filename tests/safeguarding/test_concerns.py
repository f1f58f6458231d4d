"""Concerns: by mail to concern@, by a coordinator, and their history."""

from __future__ import annotations

import json
from pathlib import Path

from relay.store.states import ConcernStatus
from tests.conftest import MENTEE, MENTOR, Sink, mail, wait_for, wire
from tests.safeguarding.helpers import (
    LEAD,
    LEADS,
    REAL_ADDRESSES,
    SECOND_LEAD,
    alerts_to,
    concerns,
    count,
    messages,
    outbox,
    run,
)

CONCERN = "concern@relay.test"


def send_raw(relay, sender: str, to: str, message) -> tuple[int, bytes]:
    """The SMTP answer to DATA, as a client sees it."""
    with relay.smtp() as client:
        client.ehlo()
        client.mail(sender)
        client.rcpt(to)
        return client.data(wire(message))


def test_a_concern_by_mail_is_stored_acknowledged_and_alerted_never_forwarded(
    configured, sink: Sink, tmp_path: Path
):
    relay, pair, store = configured(safeguarding=LEADS)
    sink.wait_for(2)  # introductions
    body = f"My mentor asked me to meet him alone. His address is {MENTOR[0]}."
    answer = send_raw(relay, MENTEE[0], CONCERN, mail(MENTEE[0], CONCERN, "Worried", body))
    assert answer[0] == 250

    wait_for(lambda: len(alerts_to(sink, LEAD)) == 1, what="the lead alert")
    wait_for(lambda: len(alerts_to(sink, SECOND_LEAD)) == 1, what="the second lead's alert")
    wait_for(lambda: len(sink.to(MENTEE[0])) == 2, what="the acknowledgement")
    [concern] = concerns(store)
    assert concern.status is ConcernStatus.OPEN and concern.source == "mail"
    assert concern.raised_by == "Ben Mentee (mentee)" and concern.summary == "Worried"
    assert [p.token for p in concern.pairs] == [pair.address.split("@")[0]]
    assert concern.raw is not None and b"meet him alone" in concern.raw

    alert = sink.to(LEAD)[0]
    assert f"concern {concern.id}" in str(alert.message["Subject"])
    for real in REAL_ADDRESSES:
        assert real.encode() not in alert.data
    ack = sink.to(MENTEE[0])[-1].message
    assert f"reference {concern.id}" in str(ack["Subject"])
    # Nothing reached the mentor but the introduction; no pair message was stored.
    assert len(sink.to(MENTOR[0])) == 1 and messages(store) == []

    shown = run(tmp_path / "relay.toml", "concern", "show", str(concern.id), "--as", "dsl")
    assert shown.exit_code == 0, shown.output
    assert "meet him alone" in shown.output and "Ben Mentee" in shown.output


def test_concern_mail_from_a_stranger_is_dropped_quietly_with_the_same_answer(
    configured, sink: Sink, tmp_path: Path
):
    relay, _pair, store = configured(safeguarding=LEADS)
    sink.wait_for(2)
    before = len(outbox(store))
    participant = send_raw(relay, MENTEE[0], CONCERN, mail(MENTEE[0], CONCERN, "a", "b"))
    stranger = send_raw(
        relay, "prober@evil.example", CONCERN, mail("prober@evil.example", CONCERN, "a", "b")
    )
    guessed = send_raw(
        relay, "x@school.example.net", CONCERN, mail("x@school.example.net", CONCERN, "a", "b")
    )
    assert stranger == guessed == participant
    with relay.smtp() as client:  # and the RCPT answer is the same for anyone
        client.ehlo()
        client.mail("prober@evil.example")
        assert client.rcpt(CONCERN)[0] == 250
    assert len(concerns(store)) == 1  # the participant's only
    assert len(outbox(store)) == before + 1 + 2  # their ack and two lead alerts, nothing more
    assert all("evil.example" not in row.recipient for row in outbox(store))


def test_a_coordinator_opens_lists_and_updates_a_concern_with_its_history(
    configured, sink: Sink, tmp_path: Path
):
    _relay, pair, store = configured(safeguarding=LEADS)
    config = tmp_path / "relay.toml"
    opened = run(
        config, "concern", "open", "--pair", pair.address, "--summary", "Odd tone", "--as", "Sam"
    )
    assert opened.exit_code == 0, opened.output
    assert opened.output.splitlines() == [
        f"opened concern 1 about {pair.address}",
        "alerted 2 leads",
    ]
    wait_for(lambda: alerts_to(sink, LEAD), what="the lead alert")

    update = run(
        config,
        "concern",
        "update",
        "1",
        "--status",
        "referred",
        "--note",
        "Called LADO",
        "--reference",
        "LADO-2291",
        "--as",
        "Dana",
    )
    assert update.exit_code == 0, update.output
    assert update.output.strip() == "concern 1 is now referred"
    closed = run(
        config, "concern", "update", "1", "--status", "closed", "--note", "Resolved", "--as", "Dana"
    )
    assert closed.exit_code == 0

    listed = json.loads(run(config, "concern", "list", "--json").output)
    assert [(c["id"], c["status"], c["reference"]) for c in listed] == [(1, "closed", "LADO-2291")]
    assert run(config, "concern", "list", "--status", "open").output.strip() == "(none)"
    history = run(config, "concern", "show", "1").output
    assert "Sam: open: opened (coordinator): Odd tone" in history
    assert "Dana: referred [reference LADO-2291]: Called LADO" in history
    assert "Dana: closed: Resolved" in history
    [concern] = concerns(store)
    assert [e.status.value for e in concern.events] == ["open", "referred", "closed"]


def test_bad_input_to_concern_commands(configured, tmp_path: Path):
    _relay, pair, store = configured(safeguarding=LEADS)
    config = tmp_path / "relay.toml"
    missing = run(
        config, "concern", "update", "42", "--status", "closed", "--note", "x", "--as", "D"
    )
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: no concern 42"
    run(config, "concern", "open", "--pair", pair.address, "--summary", "s")
    bad = run(config, "concern", "update", "1", "--status", "solved", "--note", "x", "--as", "D")
    assert bad.exit_code == 1
    assert (
        "unknown concern status 'solved' (one of open, investigating, referred, closed)"
        in bad.output
    )
    assert "Traceback" not in bad.output
    no_note = run(
        config, "concern", "update", "1", "--status", "closed", "--note", " ", "--as", "D"
    )
    assert no_note.exit_code == 1 and "needs a --note" in no_note.output
    unknown_pair = run(config, "concern", "open", "--pair", "nope@relay.test", "--summary", "s")
    assert unknown_pair.exit_code == 1 and "no pair with the address" in unknown_pair.output
    assert [c.status for c in concerns(store)] == [ConcernStatus.OPEN]
    assert count(store, type(concerns(store)[0])) == 1


def test_safeguarding_settings_are_checked(tmp_path: Path):
    from relay.config import config_from_mapping
    from relay.errors import ConfigError
    from relay.rules.base import Action

    base = {"relay": {"domain": "relay.test"}}
    source = tmp_path / "relay.toml"
    config = config_from_mapping(base, source, {})
    assert config.safeguarding.sample_rate == 0.02
    assert config.safeguarding.decide_within.total_seconds() == 24 * 3600
    assert "read by its coordinators to keep everyone safe" in config.safeguarding.footer
    assert config.rules.actions["safeguarding"] is Action.ESCALATE
    for table, problem in [
        ({"sample_rate": 2}, "sample_rate must be between 0 and 1"),
        ({"sample_rate": "often"}, "expected a number"),
        ({"concern_address": "concern@elsewhere.example"}, "must be a local part"),
        ({"decide_within": "soon"}, "expected a duration"),
    ]:
        try:
            config_from_mapping(base | {"safeguarding": table}, source, {})
        except ConfigError as error:
            assert problem in str(error)
        else:
            raise AssertionError(f"{table} was accepted")
    env = config_from_mapping(base, source, {"RELAY_SAFEGUARDING_SAMPLE_RATE": "0.5"})
    assert env.safeguarding.sample_rate == 0.5
    hold = config_from_mapping(base | {"rules": {"actions": {"keywords": "escalate"}}}, source, {})
    assert hold.rules.actions["keywords"] is Action.ESCALATE


def test_a_copy_to_concern_alongside_the_pair_is_a_concern_and_the_partner_never_sees_it(
    configured, sink: Sink
):
    relay, pair, store = configured(safeguarding=LEADS)
    sink.wait_for(2)
    message = mail(MENTEE[0], pair.address, "Saturday", "See you at the fair.", Cc=CONCERN)
    with relay.smtp() as client:
        client.sendmail(MENTEE[0], [pair.address, CONCERN], wire(message))
    forward = wait_for(
        lambda: [r for r in sink.to(MENTOR[0]) if r.message["Subject"] == "Saturday"],
        what="the forward",
    )[0]
    assert b"concern@" not in forward.data
    [concern] = concerns(store)
    assert concern.source == "mail" and concern.summary == "Saturday"
