"""Privacy and mail correctness at the edges: outsiders, bounces, loops, raw bytes, authentication."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select

from relay.store import db
from relay.store.models import DeliveryStatus, Message, MessageStatus, OutboxEntry, OutboxKind
from tests.conftest import (
    PairInfo,
    RunningRelay,
    Sink,
    mail,
    wait_for,
    wire,
)
from tests.tlskeys import dkim_txt_record, rsa_key, self_signed, write_private_key


def forwards_to(sink: Sink, address: str) -> list:
    return [r for r in sink.to(address) if "Auto-Submitted" not in r.message]


def notices_to(sink: Sink, address: str, subject_part: str) -> list:
    return [r for r in sink.to(address) if subject_part in str(r.message["Subject"])]


def statuses(store: db.Store) -> list[MessageStatus]:
    with store.session() as session:
        return [m.status for m in session.scalars(select(Message).order_by(Message.id))]


# -- To/Cc outside the pair ------------------------------------------------------


def test_cc_to_a_friend_is_refused_and_explained(
    relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store
):
    message = mail(pair.mentee, pair.address, "Homework", Cc="friend@elsewhere.example")
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentee, [pair.address], wire(message))
    assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.1")
    notice = wait_for(lambda: notices_to(sink, pair.mentee, "Not passed on"))[0]
    text = notice.message.get_content()
    assert "friend@elsewhere.example" in text and pair.address in text
    assert pair.mentor not in notice.data.decode()
    assert statuses(store) == [MessageStatus.REJECTED]
    assert sink.to("friend@elsewhere.example") == [] and forwards_to(sink, pair.mentor) == []


def test_reply_all_naming_only_the_pair_passes(relay: RunningRelay, sink: Sink, pair: PairInfo):
    message = mail(pair.mentee, pair.address, "Re: hi", Cc=f"{pair.mentee}, {pair.address}")
    relay.send(message, pair.mentee, pair.address)
    assert wait_for(lambda: forwards_to(sink, pair.mentor))


# -- bounces ----------------------------------------------------------------------


def dsn(to: str, original_subject: str, action: str = "failed", message_id: str = "") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464).

    With message_id, it returns the headers of that message (text/rfc822-headers),
    as real DSNs do; the relay believes only a DSN naming the message it sent.
    """
    returned = (
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: {original_subject}\r\n\r\n"
        if message_id
        else ""
    )
    return (
        "From: MAILER-DAEMON@mx.school.example.net\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        f"Your message '{original_subject}' to ben.real@school.example.net failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.school.example.net\r\n\r\n"
        "Final-Recipient: rfc822; ben.real@school.example.net\r\n"
        f"Action: {action}\r\nStatus: 5.1.1\r\n"
        f"\r\n{returned}--B--\r\n"
    ).encode()


def test_bounce_marks_failed_and_tells_sender_without_details(
    relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store
):
    relay.send(mail(pair.mentor, pair.address, "Weekend plans"), pair.mentor, pair.address)
    forward = wait_for(lambda: forwards_to(sink, pair.mentee))[0]
    bounce_address = forward.envelope_from
    with relay.smtp() as client:
        sent_id = forward.message["Message-ID"]
        client.sendmail(
            "", [bounce_address], dsn(bounce_address, "Weekend plans", message_id=sent_id)
        )
    notice = wait_for(lambda: notices_to(sink, pair.mentor, "Not delivered"))[0]
    text = notice.data.decode()
    assert "Weekend plans" in text and "Ben Mentee" in text
    assert pair.mentee not in text and "school.example.net" not in text and "5.1.1" not in text
    with store.session() as session:
        row = session.scalars(
            select(OutboxEntry).where(OutboxEntry.kind == OutboxKind.FORWARD)
        ).one()
        assert row.status is DeliveryStatus.FAILED


def test_forged_or_harmless_bounces_change_nothing(
    relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store
):
    relay.send(mail(pair.mentor, pair.address, "Plans"), pair.mentor, pair.address)
    real = wait_for(lambda: forwards_to(sink, pair.mentee))[0].envelope_from

    def forward_status() -> DeliveryStatus:
        with store.session() as session:
            return session.scalars(
                select(OutboxEntry.status).where(OutboxEntry.kind == OutboxKind.FORWARD)
            ).one()

    # The sink has the mail before the worker records it: wait for the record first.
    wait_for(lambda: forward_status() is DeliveryStatus.DELIVERED, what="delivery recorded")
    local, domain = real.split("@")
    forged = f"{local[:-4]}beef@{domain}"
    with relay.smtp() as client:
        client.sendmail("", [forged], dsn(forged, "Plans"))  # accepted quietly
        client.sendmail("", [real], dsn(real, "Plans", action="delayed"))
    assert forward_status() is DeliveryStatus.DELIVERED
    assert notices_to(sink, pair.mentor, "Not delivered") == []


# -- loops ----------------------------------------------------------------------------


def test_mail_loops_are_discarded(relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store):
    looping = mail(pair.mentor, pair.address, "loop")
    for hop in range(31):
        looping["Received"] = f"from hop{hop}.example by hop{hop + 1}.example"
    relay.send(looping, pair.mentor, pair.address)
    ours = mail(pair.mentor, pair.address, "ours", X_Loop="relay.test")
    relay.send(ours, pair.mentor, pair.address)
    assert statuses(store) == [MessageStatus.DISCARDED, MessageStatus.DISCARDED]
    with store.session() as session:
        assert (
            session.scalars(select(OutboxEntry).where(OutboxEntry.message_id.is_not(None))).all()
            == []
        )


# -- raw input ----------------------------------------------------------------------


def raw_smtp(port: int, sender: str, recipient: str, data: bytes) -> list[bytes]:
    """A client that sends DATA bytes exactly as given (smtplib would fix them up)."""
    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rb")

        def reply() -> bytes:
            lines = [stream.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(stream.readline())
            replies.append(lines[-1].strip())
            return lines[-1]

        reply()
        for command in (
            b"EHLO test",
            f"MAIL FROM:<{sender}>".encode(),
            f"RCPT TO:<{recipient}>".encode(),
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            reply()
        sock.sendall(data + b"\r\n.\r\n")
        reply()
        sock.sendall(b"QUIT\r\n")
        reply()
    return replies


@pytest.mark.parametrize(
    "body",
    [
        b"one\n.\nMAIL FROM:<x@evil.example>",
        b"one\r\n.\nsmuggled",
        b"one\n.\r\nsmuggled",
        b"one\r.\rsmuggled",
    ],
)
def test_smuggling_sequences_never_reach_anyone(
    relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store, body: bytes
):
    head = f"From: {pair.mentor}\r\nTo: {pair.address}\r\nSubject: s\r\n\r\n".encode()
    replies = raw_smtp(relay.port, pair.mentor, pair.address, head + body)
    assert replies[6].startswith(b"221"), "one message, one reply: nothing was split off"
    if replies[5].startswith(b"250"):
        # "\r\n.\n": SMTP transparency already removed the dot, so no end-of-data
        # sequence is left in what was stored and forwarded.
        assert body.startswith(b"one\r\n.")
        with store.session() as session:
            assert b"\r\n.\r\n" not in session.scalars(select(Message)).one().raw
    else:
        assert replies[5].startswith(b"550 5.6.0"), replies
        assert statuses(store) == []


def test_nul_refused_and_bare_lf_normalised(
    relay: RunningRelay, sink: Sink, pair: PairInfo, store: db.Store
):
    head = f"From: {pair.mentor}\nTo: {pair.address}\nSubject: lf\n\n".encode()
    assert raw_smtp(relay.port, pair.mentor, pair.address, head + b"a\x00b")[5].startswith(
        b"550 5.6.0"
    )
    assert raw_smtp(relay.port, pair.mentor, pair.address, head + b"line one\nline two")[
        5
    ].startswith(b"250")
    with store.session() as session:
        stored = session.scalars(select(Message)).one()
        assert b"line one\r\nline two" in stored.raw and b"\n" not in stored.raw.replace(
            b"\r\n", b""
        )
    delivered = wait_for(lambda: forwards_to(sink, pair.mentee))[0]
    assert delivered.message.get_content().splitlines() == ["line one", "line two"]


# -- Authentication-Results, DKIM, STARTTLS -------------------------------------------


def authenticated(pair: PairInfo, results: list[str], hops_before: int) -> EmailMessage:
    message = mail(pair.mentor, pair.address, "auth")
    del message["From"], message["To"], message["Subject"]
    for _ in range(hops_before):
        message["Received"] = "from mx.relay.test by relay.test"
    for result in results:
        message["Authentication-Results"] = result
    message["Received"] = "from mail.mentors.example.org by upstream.example"
    message["From"], message["To"], message["Subject"] = pair.mentor, pair.address, "auth"
    return message


def test_trusted_authentication_results_decide(configured, sink: Sink):
    running, info, store = configured(
        rules='disable = ["new_pair"]\n[rules.authentication]\ntrusted_authserv_id = "mx.relay.test"'
    )
    # Our edge MTA says DMARC failed: held.
    failing = authenticated(info, ["mx.relay.test; spf=fail smtp.mailfrom=x; dmarc=fail"], 1)
    running.send(failing, info.mentor, info.address)
    # A header claiming our edge MTA's id, written upstream (below a second Received), is
    # removed; what our edge MTA itself said (dmarc=pass for the From) decides: queued.
    forged = mail(info.mentor, info.address, "forged")
    forged["Received"] = "from mx.relay.test by relay.test"
    forged["Authentication-Results"] = "mx.relay.test; dmarc=pass header.from=mentors.example.org"
    forged["Received"] = "from upstream by upstream"
    forged["Authentication-Results"] = "mx.relay.test; dmarc=fail"
    running.send(forged, info.mentor, info.address)
    # The edge MTA said nothing about this one: not authenticated, held.
    running.send(mail(info.mentor, info.address, "unchecked"), info.mentor, info.address)
    assert statuses(store) == [MessageStatus.HELD, MessageStatus.QUEUED, MessageStatus.HELD]
    with store.session() as session:
        held = session.scalars(select(Message)).first()
        assert (
            held is not None and "is not authenticated (dmarc=fail per mx.relay.test)" in held.hits
        )


def test_outbound_mail_is_dkim_signed(configured, sink: Sink, tmp_path: Path):
    key = rsa_key()
    write_private_key(key, tmp_path / "dkim.pem")
    running, info, _ = configured(dkim='selector = "mr2026"\nkey_file = "dkim.pem"')
    running.send(mail(info.mentor, info.address, "signed"), info.mentor, info.address)
    forward = wait_for(lambda: forwards_to(sink, info.mentee))[0]
    intro = sink.to(info.mentee)[0]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mr2026._domainkey.relay.test."
        return dkim_txt_record(key)

    for delivered in (forward, intro):
        assert delivered.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(delivered.data, dnsfunc=dns)
    tampered = forward.data.replace(b"Subject: signed", b"Subject: changed")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_starttls_offered_and_required(configured, sink: Sink, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    running, info, _ = configured(
        smtp=f'host = "127.0.0.1"\nport = 0\ntls_cert = "{cert.name}"\ntls_key = "{key.name}"\nrequire_starttls = true'
    )
    with running.smtp() as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.mail(info.mentor)
        assert code == 530
    context = ssl.create_default_context(cafile=str(cert))
    with running.smtp() as client:
        client.starttls(context=context)
        client.sendmail(info.mentor, [info.address], wire(mail(info.mentor, info.address, "tls")))
    assert wait_for(lambda: forwards_to(sink, info.mentee))


# -- identity parts ----------------------------------------------------------------


def signed_with_card(pair: PairInfo) -> EmailMessage:
    message = mail(pair.mentor, pair.address, "my card", "Here is my card.")
    message.add_attachment(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana Mentor\r\nEMAIL;TYPE=INTERNET:ana.real@mentors.example.org\r\n"
        "TEL;TYPE=CELL:+44 7700 900123\r\nADR:;;1 Main Street;Leeds;;LS1 1AA;UK\r\nEND:VCARD\r\n",
        subtype="vcard",
        filename="ana.vcf",
    )
    message.add_attachment(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\r\nAna <ana.real@mentors.example.org>\r\n",
        subtype="pgp-keys",
        filename="key.asc",
    )
    return message


def test_cards_are_held_by_default(relay: RunningRelay, pair: PairInfo, store: db.Store):
    relay.send(signed_with_card(pair), pair.mentor, pair.address)
    assert statuses(store) == [MessageStatus.HELD]
    with store.session() as session:
        assert "contact card (vCard)" in session.scalars(select(Message)).one().hits


def test_accepted_card_is_scrubbed_and_keys_removed(configured, sink: Sink):
    running, info, _ = configured(
        rules='disable = ["new_pair", "contact", "attachments"]\n[rules.actions]\nidentity_parts = "accept"'
    )
    running.send(signed_with_card(info), info.mentor, info.address)
    delivered = wait_for(lambda: forwards_to(sink, info.mentee))[0]
    types = [part.get_content_type() for part in delivered.message.walk()]
    assert "application/pgp-keys" not in types and "text/vcard" in types
    card = next(p for p in delivered.message.walk() if p.get_content_type() == "text/vcard")
    text = card.get_content()
    assert "FN:Ana Mentor" in text
    for gone in ("EMAIL", "TEL", "ADR", "7700", "ana.real"):
        assert gone not in text


def test_vcard_21_quoted_printable_address_lines_go_whole():
    """Outlook's vCard 2.1 continues a quoted-printable ADR on lines that do not start with a space."""
    from email import message_from_bytes

    from relay.mail.policy import POLICY
    from relay.outbound.identity_parts import strip_identity_parts

    raw = (
        b"From: ana.real@mentors.example.org\r\nSubject: card\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/x-vcard; charset=utf-8\r\n\r\n"
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:Mentor;Ana\r\n"
        b"ADR;WORK;PREF;ENCODING=QUOTED-PRINTABLE:;;14 Harbour Street=0D=0A=\r\n"
        b"Bristol BS1 4QA;Bristol;;BS1 4QA;United Kingdom\r\n"
        b"TEL;CELL:+44 7700 900123\r\nEND:VCARD\r\n"
    )
    message = message_from_bytes(raw, policy=POLICY)
    strip_identity_parts(message)
    card = message.get_content()
    assert "N:Mentor;Ana" in card
    for gone in ("Harbour", "Bristol", "BS1", "7700"):
        assert gone not in card
