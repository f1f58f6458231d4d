"""End to end: participants write to one pair address and reach each other, and nobody else."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from relay.store import db
from relay.store.models import Message, MessageStatus, Pair, PairStatus
from tests.conftest import MENTOR, PairInfo, RunningRelay, Sink, mail, wait_for, wire


def forwards(sink: Sink, recipient: str) -> list:
    """Mail at the sink for a recipient that is not a relay notice."""
    return [each for each in sink.to(recipient) if "Auto-Submitted" not in each.message]


def test_introductions_reach_both_participants(relay: RunningRelay, sink: Sink, pair: PairInfo):
    sink.wait_for(2)
    intro_to_mentee = sink.to(pair.mentee)[0].message
    body = intro_to_mentee.get_content()
    assert pair.address in body
    assert "Ana Mentor" in body
    assert pair.mentor not in intro_to_mentee.as_string()


def test_mentor_writes_and_mentee_replies(relay: RunningRelay, sink: Sink, pair: PairInfo):
    relay.send(mail(f"Ana <{pair.mentor}>", pair.address, "Careers"), pair.mentor, pair.address)
    wait = sink.wait_for(3)
    first = forwards(sink, pair.mentee)[0]
    assert first.message["Subject"] == "Careers"
    assert first.message["From"].addresses[0].addr_spec == pair.address
    assert first.message["From"].addresses[0].display_name == "Ana Mentor via Test Programme"
    assert first.message["To"].addresses[0].addr_spec == pair.mentee
    assert first.message.get_content().strip() == "How is school going?"

    reply = mail(pair.mentee, pair.address, "Re: Careers", "Fine, thanks!")
    relay.send(reply, pair.mentee, pair.address)
    sink.wait_for(len(wait) + 1)
    back = forwards(sink, pair.mentor)[0]
    assert back.message["From"].addresses[0].addr_spec == pair.address
    assert back.message["From"].addresses[0].display_name == "Ben Mentee via Test Programme"
    assert back.message.get_content().strip() == "Fine, thanks!"


def test_thread_stays_whole_across_three_messages(relay: RunningRelay, sink: Sink, pair: PairInfo):
    first = mail(pair.mentor, pair.address, "Plans", Message_ID="<m1@mentors.example.org>")
    relay.send(first, pair.mentor, pair.address)
    sink.wait_for(3)
    seen_by_mentee = forwards(sink, pair.mentee)[0].message
    relay_id_1 = seen_by_mentee["Message-ID"]
    assert relay_id_1.endswith("@relay.test>")

    second = mail(
        pair.mentee,
        pair.address,
        "Re: Plans",
        Message_ID="<m2@school.example.net>",
        In_Reply_To=relay_id_1,
        References=relay_id_1,
    )
    relay.send(second, pair.mentee, pair.address)
    sink.wait_for(4)
    seen_by_mentor = forwards(sink, pair.mentor)[0].message
    # The mentor's client knows its own first message by the id it gave it.
    assert seen_by_mentor["In-Reply-To"] == "<m1@mentors.example.org>"
    assert seen_by_mentor["References"] == "<m1@mentors.example.org>"
    relay_id_2 = seen_by_mentor["Message-ID"]

    third = mail(
        pair.mentor,
        pair.address,
        "Re: Plans",
        Message_ID="<m3@mentors.example.org>",
        In_Reply_To=relay_id_2,
        References=f"<m1@mentors.example.org> {relay_id_2}",
    )
    relay.send(third, pair.mentor, pair.address)
    sink.wait_for(5)
    third_seen = forwards(sink, pair.mentee)[1].message
    assert third_seen["In-Reply-To"] == "<m2@school.example.net>"
    assert third_seen["References"].split() == [relay_id_1, "<m2@school.example.net>"]


def test_no_real_address_in_delivered_bytes(configured, sink: Sink):
    # The contact rule would hold this (it names the partner's address, which
    # counts as any address); what is checked here is what scrubbing leaves.
    relay, pair, _ = configured(rules='disable = ["new_pair", "contact"]')
    leaky = mail(
        f'"Ana Real-Name" <{pair.mentor}>',
        pair.address,
        f"note from {pair.mentor.upper()}",
        f"Write to me at {pair.mentor} or Mailto:{pair.mentor.upper()}\n\n"
        f"On Monday, Ben <{pair.mentee}> wrote:\n> hi",
        Reply_To=pair.mentor,
        Sender=pair.mentor,
        Cc=pair.address,
        Received="from laptop.mentors.example.org (203.0.113.9)",
        Return_Path=f"<{pair.mentor}>",
        X_Originating_IP="203.0.113.9",
        Disposition_Notification_To=pair.mentor,
    )
    relay.send(leaky, pair.mentor, pair.address)
    sink.wait_for(3)
    delivered = forwards(sink, pair.mentee)[0]
    raw = delivered.data.lower()
    for secret in (pair.mentor, "mentors.example.org", "203.0.113.9"):
        assert secret.lower().encode() not in raw, secret
    # The recipient's own address appears once: in To, where their client expects it.
    assert raw.count(pair.mentee.lower().encode()) == 1
    assert delivered.message["To"].addresses[0].addr_spec == pair.mentee
    assert delivered.envelope_from.endswith("@relay.test")
    assert "Real-Name" not in delivered.message["From"]
    for dropped in ("Reply-To", "Sender", "Cc", "Received", "X-Originating-IP"):
        assert dropped not in delivered.message


@pytest.mark.parametrize(
    ("envelope_from", "from_header", "expected"),
    [
        ("stranger@elsewhere.example", "stranger@elsewhere.example", "550 5.7.1"),
        (MENTOR[0], "", "550 5.7.1"),  # no From at all
        (MENTOR[0], f"{MENTOR[0]}, other@elsewhere.example", "550 5.7.1"),
    ],
)
def test_refused_senders(
    relay: RunningRelay,
    sink: Sink,
    pair: PairInfo,
    store: db.Store,
    envelope_from: str,
    from_header: str,
    expected: str,
):
    message = mail(from_header or "x@y.example", pair.address)
    if not from_header:
        del message["From"]
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(envelope_from, [pair.address], wire(message))
    assert f"{refused.value.smtp_code} {refused.value.smtp_error.decode()}".startswith(expected)
    with store.session() as session:
        assert session.scalars(select(Message)).all() == []


def test_several_from_headers_refused(relay: RunningRelay, pair: PairInfo):
    raw = (
        f"From: {pair.mentor}\r\nFrom: {pair.mentee}\r\nTo: {pair.address}\r\n"
        "Subject: two\r\n\r\nbody\r\n"
    ).encode()
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentor, [pair.address], raw)
    assert refused.value.smtp_code == 550


@pytest.mark.parametrize(
    ("recipient", "code", "status"),
    [
        ("someone@gmail.example", 550, b"5.7.1"),
        ("zzzzzzzzzzzzz@relay.test", 550, b"5.1.1"),
        ("not-a-token@relay.test", 550, b"5.1.1"),
    ],
)
def test_refused_recipients(relay: RunningRelay, pair: PairInfo, recipient: str, code, status):
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pair.mentor)
        reply_code, text = client.rcpt(recipient)
    assert reply_code == code
    assert text.startswith(status)


def test_ended_pair_refuses_mail(relay: RunningRelay, pair: PairInfo, store: db.Store):
    with store.session() as session:
        session.scalars(select(Pair)).one().status = PairStatus.ENDED
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pair.mentor)
        code, text = client.rcpt(pair.address)
    assert (code, text[:5]) == (550, b"5.1.1")


def test_pair_address_is_case_insensitive(relay: RunningRelay, sink: Sink, pair: PairInfo):
    shouted = pair.address.upper()
    relay.send(mail(pair.mentor.upper(), shouted), pair.mentor, shouted)
    sink.wait_for(3)
    assert forwards(sink, pair.mentee)


def test_oversized_message_refused(configured):
    running, info, store = configured(
        relay='domain = "relay.test"\nmax_message_size = 2000\npostmaster = "op@ops.example"'
    )
    big = mail(info.mentor, info.address, body="x" * 5000)
    with running.smtp() as client, pytest.raises(smtplib.SMTPResponseException) as refused:
        client.sendmail(info.mentor, [info.address], wire(big))
    assert refused.value.smtp_code == 552
    assert refused.value.smtp_error.startswith(b"5.3.4")
    with store.session() as session:
        assert session.scalars(select(Message)).all() == []


def test_message_is_stored_before_its_250(relay: RunningRelay, pair: PairInfo, store: db.Store):
    message = mail(pair.mentor, pair.address, "Stored first", Message_ID="<s1@mentors.example.org>")
    relay.send(message, pair.mentor, pair.address)
    # Read at once, from another connection, right after the 250.
    with store.session() as session:
        stored = session.scalars(select(Message)).one()
        assert stored.original_message_id == "<s1@mentors.example.org>"
        assert stored.status is MessageStatus.QUEUED
        assert b"Stored first" in stored.raw


def test_internal_error_is_451_without_detail(relay: RunningRelay, pair: PairInfo, store: db.Store):
    with store.engine.begin() as connection:  # a real failure: the table is gone
        connection.exec_driver_sql("ALTER TABLE outbox RENAME TO outbox_gone")
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentor, [pair.address], wire(mail(pair.mentor, pair.address)))
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error == b"4.3.0 temporary failure, please try again later"
    with store.session() as session:
        assert session.scalars(select(Message)).all() == []  # rolled back: nothing half-stored


def test_maildir_transport_delivers_threaded_mail(configured, tmp_path):
    running, info, _ = configured(delivery='transport = "maildir"\nmaildir = "outbox"')
    running.send(mail(info.mentor, info.address, "Maildir"), info.mentor, info.address)
    new = tmp_path / "outbox" / info.mentee / "new"
    files = wait_for(
        lambda: sorted(new.glob("*")) if new.exists() and len(list(new.glob("*"))) >= 2 else None
    )
    texts = [path.read_bytes() for path in files]
    assert any(b"Subject: Maildir" in text for text in texts)
    assert all(info.mentor.encode() not in text for text in texts)


def test_smarthost_with_starttls_and_login(configured, tmp_path):
    """The transport speaks STARTTLS to a smarthost that demands it, and logs in."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.conftest import SinkHandler, free_port
    from tests.tlskeys import self_signed

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server, session, envelope, mechanism, data) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    handler = SinkHandler()
    port = free_port()
    smarthost = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_require_tls=True,
    )  # fmt: skip
    smarthost.start()
    try:
        running, info, _ = configured(
            smarthost=(
                f'host = "127.0.0.1"\nport = {port}\ntls = "starttls"\nca_file = "{cert}"\n'
                'username = "relay"\npassword = "s3cret"'
            )
        )
        running.send(mail(info.mentor, info.address, "over TLS"), info.mentor, info.address)
        wait_for(lambda: any(b"over TLS" in r.data for r in handler.received))
        assert logins and logins[0] == (b"relay", b"s3cret")
    finally:
        smarthost.stop()
