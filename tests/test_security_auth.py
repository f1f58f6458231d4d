"""Anyone could write as a participant: the relay now checks SPF, DKIM and DMARC itself.

Each test runs the relay ([rules.authentication] mode = "verify") against a
real DNS server on loopback (tests/dnsserver.py, started by the ``dns``
fixture) that publishes SPF, DKIM and DMARC records for the test domains, and
sends mail signed with dkimpy over real SMTP. The SMTP client is 127.0.0.1,
so an SPF record naming 127.0.0.1 passes and one naming 192.0.2.x fails.
"""

from __future__ import annotations

import smtplib
import threading

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from relay.cli import cli
from relay.config import load_config
from relay.errors import ConfigError
from relay.store import db
from relay.store.models import Message, MessageStatus
from tests.conftest import Sink, mail, wait_for, wire, write_config
from tests.dnsserver import BlackHole, LoopbackDns
from tests.tlskeys import dkim_txt_record, rsa_key

SELECTOR = b"mr2026"


@pytest.fixture(scope="module")
def mentor_key():
    return rsa_key()


def publish(dns: LoopbackDns, key) -> None:
    zone = dns.zone
    # The mentor's provider sends from 192.0.2.10 and signs; DMARC says reject.
    zone.txt("mentors.example.org", "v=spf1 ip4:192.0.2.10 -all")
    zone.txt("_dmarc.mentors.example.org", "v=DMARC1; p=reject; adkim=r; aspf=r")
    zone.txt("mr2026._domainkey.mentors.example.org", dkim_txt_record(key).decode())
    # The mentee's provider is this test's client (127.0.0.1); DMARC p=none.
    zone.txt("school.example.net", "v=spf1 ip4:127.0.0.1 -all")
    zone.txt("_dmarc.school.example.net", "v=DMARC1; p=none")
    # A forwarder (SRS) and a mailing list, both sending from 127.0.0.1.
    zone.txt("forwarder.example", "v=spf1 ip4:127.0.0.1 -all")
    zone.txt("lists.example", "v=spf1 ip4:127.0.0.1 -all")


def signed(message, key, domain: bytes = b"mentors.example.org") -> bytes:
    data = wire(message)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    headers = [b"from", b"to", b"subject", b"date", b"message-id"]
    return dkim.sign(data, SELECTOR, domain, pem, include_headers=headers) + data


def verifying(dns: LoopbackDns, actions: str = "") -> str:
    return (
        'disable = ["new_pair"]\n'
        + actions
        + '[rules.authentication]\nmode = "verify"\n'
        + dns.settings()
    )


def stored(store: db.Store) -> list[tuple[str, MessageStatus, str]]:
    with store.session() as session:
        rows = session.scalars(select(Message).order_by(Message.id))
        return [(m.subject, m.status, m.hits) for m in rows]


def forwards_to(sink: Sink, address: str) -> list:
    return [r for r in sink.to(address) if "via" in str(r.message["From"])]


def test_dkim_pass_fail_none_and_spf_pass(configured, sink: Sink, dns: LoopbackDns, mentor_key):
    publish(dns, mentor_key)
    relay, pair, store = configured(rules=verifying(dns))
    good = mail(pair.mentor, pair.address, "signed by the mentor's provider")
    relay.send(signed(good, mentor_key), pair.mentor, pair.address)
    tampered = signed(mail(pair.mentor, pair.address, "changed on the way"), mentor_key)
    relay.send(
        tampered.replace(b"How is school going?", b"Send me your address"),
        pair.mentor,
        pair.address,
    )
    relay.send(mail(pair.mentor, pair.address, "not signed"), pair.mentor, pair.address)
    # The mentee's provider is in SPF: a plain message passes on SPF alone.
    relay.send(mail(pair.mentee, pair.address, "spf pass"), pair.mentee, pair.address)
    wait_for(lambda: forwards_to(sink, pair.mentor))
    wait_for(lambda: forwards_to(sink, pair.mentee))
    rows = stored(store)
    assert [(subject, status) for subject, status, _ in rows] == [
        ("signed by the mentor's provider", MessageStatus.QUEUED),
        ("changed on the way", MessageStatus.HELD),
        ("not signed", MessageStatus.HELD),
        ("spf pass", MessageStatus.QUEUED),
    ]
    assert "dkim=fail (mentors.example.org) dmarc=fail" in rows[1][2]
    assert "spf=fail dkim=none dmarc=fail" in rows[2][2]
    assert [str(r.message["Subject"]) for r in forwards_to(sink, pair.mentee)] == [
        "signed by the mentor's provider"
    ]
    # Held for failing authentication: nobody is told but moderators (no "held" notice
    # goes to the real mentor, who may never have written it).
    assert [str(r.message["Subject"]) for r in sink.to(pair.mentor)][1:] == ["spf pass"]


def test_a_stranger_writing_as_a_participant_is_held(
    configured, sink: Sink, dns: LoopbackDns, mentor_key
):
    """The attack of the issue: MAIL FROM:<attacker@...> with From: <a participant>."""
    publish(dns, mentor_key)
    relay, pair, store = configured(rules=verifying(dns))
    forged = mail(pair.mentor, pair.address, "it is really me, your mentor")
    relay.send(forged, "attacker@evil.example", pair.address)
    # A moderator rejects it: the mentor, who never wrote it, is not told either.
    rejected = CliRunner().invoke(
        cli, ["-c", str(relay.config.source), "reject", "1", "--reason", "spoofed", "--as", "mod"]
    )
    assert rejected.exit_code == 0, rejected.output
    relay.send(mail(pair.mentee, pair.address, "sentinel"), pair.mentee, pair.address)
    wait_for(lambda: forwards_to(sink, pair.mentor))
    rows = stored(store)
    assert rows[0][1] is MessageStatus.REJECTED
    assert "From mentors.example.org is not authenticated (spf=none" in rows[0][2]
    assert forwards_to(sink, pair.mentee) == []
    assert len(sink.to(pair.mentor)) == 2  # the introduction and the sentinel, no notice


def test_forwarded_mail(configured, sink: Sink, dns: LoopbackDns, mentor_key):
    """SRS keeps DKIM (aligned: delivered); a list footer breaks it (held)."""
    publish(dns, mentor_key)
    relay, pair, store = configured(rules=verifying(dns))
    srs = "SRS0=HHH=TT=mentors.example.org=ana.real@forwarder.example"
    relay.send(
        signed(mail(pair.mentor, pair.address, "forwarded, signed"), mentor_key), srs, pair.address
    )
    relay.send(mail(pair.mentor, pair.address, "forwarded, not signed"), srs, pair.address)
    through_list = signed(mail(pair.mentor, pair.address, "through a list"), mentor_key)
    through_list = b"List-Id: <mentors.lists.example>\r\n" + through_list
    through_list += b"-- \r\nYou are subscribed to mentors@lists.example\r\n"
    relay.send(through_list, "mentors-bounces@lists.example", pair.address)
    relay.send(mail(pair.mentee, pair.address, "sentinel"), pair.mentee, pair.address)
    wait_for(lambda: forwards_to(sink, pair.mentor))
    rows = stored(store)
    assert [(subject, status) for subject, status, _ in rows] == [
        ("forwarded, signed", MessageStatus.QUEUED),
        ("forwarded, not signed", MessageStatus.HELD),
        ("through a list", MessageStatus.HELD),
        ("sentinel", MessageStatus.QUEUED),
    ]
    # SPF passed, but for the forwarder's domain, not the From's: not aligned.
    assert "spf=pass dkim=none dmarc=fail" in rows[1][2]
    assert "spf=pass dkim=fail (mentors.example.org) dmarc=fail" in rows[2][2]


def test_the_action_comes_from_the_rules_table(
    configured, sink: Sink, dns: LoopbackDns, mentor_key
):
    publish(dns, mentor_key)
    relay, pair, store = configured(
        rules=verifying(dns, actions='[rules.actions]\nauthentication = "reject"\n')
    )
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(pair.mentor, [pair.address], wire(mail(pair.mentor, pair.address, "x")))
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        550,
        b"5.7.1 sender could not be verified",
    )
    assert stored(store)[0][1] is MessageStatus.REJECTED


def test_a_silent_dns_server_holds_the_message_and_stalls_nothing(configured, sink: Sink):
    quiet = BlackHole()
    try:
        relay, pair, store = configured(
            rules='disable = ["new_pair"]\n[rules.authentication]\nmode = "verify"\n'
            f'nameservers = ["127.0.0.1"]\nport = {quiet.port}\ntimeout = 2'
        )
        result: list[object] = []

        def send() -> None:
            try:
                relay.send(
                    mail(pair.mentee, pair.address, "dns is down"), pair.mentee, pair.address
                )
                result.append("250")
            except Exception as error:  # recorded, asserted below
                result.append(error)

        sender = threading.Thread(target=send)
        sender.start()
        assert quiet.asked.wait(10), "intake never asked DNS"
        # While that message waits on DNS, the daemon still serves other clients.
        with relay.smtp() as other:
            assert other.noop()[0] == 250
            assert other.ehlo()[0] == 250
        assert sender.is_alive(), "the DNS wait ended before the other client was served"
        sender.join(30)
        assert result == ["250"]
        _, status, hits = stored(store)[0]
        assert status is MessageStatus.HELD and "dmarc=temperror" in hits
    finally:
        quiet.stop()


@pytest.mark.parametrize(
    ("smtp", "authentication", "mode"),
    [
        ('host = "0.0.0.0"', "", "verify"),
        ('host = "192.0.2.7"', "", "verify"),
        ('host = "127.0.0.1"', "", "off"),
        ('host = "::1"', 'trusted_authserv_id = "mx.example"', "trust-front"),
        ('host = "0.0.0.0"', 'mode = "off"', "off"),
        ('protocol = "lmtp"\nhost = "0.0.0.0"', "", "off"),
    ],
)
def test_default_mode_depends_on_where_smtp_listens(tmp_path, smtp, authentication, mode):
    path = write_config(
        tmp_path,
        "sqlite:///x.db",
        smtp=smtp,
        rules=f"[rules.authentication]\n{authentication}",
    )
    assert load_config(path).authentication_mode == mode


def test_bad_authentication_settings_are_one_line_errors(tmp_path):
    for body, problem in (
        ('mode = "sometimes"', "rules.authentication.mode: expected one of verify"),
        ('mode = "trust-front"', '"trust-front" needs trusted_authserv_id'),
        ("timeout = 0", "rules.authentication.timeout: expected a whole number"),
    ):
        path = write_config(tmp_path, "sqlite:///x.db", rules=f"[rules.authentication]\n{body}")
        with pytest.raises(ConfigError, match=problem):
            load_config(path)


def test_spoofed_mail_does_not_use_up_the_new_pair_hold(
    configured, sink: Sink, dns: LoopbackDns, mentor_key
):
    publish(dns, mentor_key)
    relay, pair, store = configured(
        rules='[rules.new_pair]\nmessages = 1\n[rules.authentication]\nmode = "verify"\n'
        + dns.settings()
    )
    for number in range(2):
        spoofed = mail(pair.mentor, pair.address, f"spoofed {number}")
        relay.send(spoofed, "attacker@evil.example", pair.address)
    real = signed(mail(pair.mentor, pair.address, "my real first message"), mentor_key)
    relay.send(real, pair.mentor, pair.address)
    subject, status, hits = stored(store)[2]
    assert subject == "my real first message" and status is MessageStatus.HELD
    assert '"rule": "new_pair"' in hits and '"rule": "authentication"' not in hits
