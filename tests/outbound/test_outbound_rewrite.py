"""rewrite() called directly: the header allow-list, From and To, Message-ID and threading."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from relay.outbound.rewrite import (
    KEPT_HEADERS,
    LOOP_HEADER,
    RewritePlan,
    as_outbound_bytes,
    first_message_id,
    message_ids,
    rewrite,
)

ANA = "ana.real@mentors.example.org"
BEN = "ben.real@school.example.net"
PAIR = "k7q2m9x4ab3cd@relay.test"

PLAN = RewritePlan(
    programme_name="Mentor Relay",
    pair_address=PAIR,
    sender_display_name="Ana Mentor",
    recipient_display_name="Ben Mentee",
    recipient_address=BEN,
    relay_message_id="<r-2@relay.test>",
    in_reply_to=("<ben-1@school.example.net>",),
    references=("<ben-1@school.example.net>",),
    hidden_addresses=(ANA, BEN),
    loop_marker="relay.test",
)


def _original() -> EmailMessage:
    raw = (
        f"Return-Path: <{ANA}>\n"
        "Received: from [192.0.2.7] by mail.mentors.example.org\n"
        f'From: "Ana Real" <{ANA}>\n'
        f"To: {PAIR}\nCc: {ANA}\nReply-To: {ANA}\nSender: {ANA}\n"
        f"Subject: note from {ANA}\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0000\n"
        "Message-ID: <ana-2@mentors.example.org>\n"
        "In-Reply-To: <r-1@relay.test>\nReferences: <r-1@relay.test>\n"
        "X-Mailer: Thunderbird\nX-Originating-IP: 192.0.2.7\nDKIM-Signature: v=1; d=x\n"
        "List-Unsubscribe: <mailto:ana.real@mentors.example.org>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Language: en\n\n"
        f"Hi Ben, Ana ({ANA})\n"
    ).encode()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_only_allowed_headers_survive_and_the_relay_writes_the_rest() -> None:
    outbound = rewrite(_original(), PLAN)
    written = {"from", "to", "message-id", "in-reply-to", "references", LOOP_HEADER.lower()}
    assert {name.lower() for name in outbound} == KEPT_HEADERS | written
    wire = as_outbound_bytes(outbound)
    assert b"192.0.2.7" not in wire and b"mentors.example.org" not in wire
    assert b"Thunderbird" not in wire and b"\nReply-To:" not in wire


def test_from_names_the_sender_via_the_programme_at_the_pair_address() -> None:
    outbound = rewrite(_original(), PLAN)
    assert str(outbound["From"]) == f"Ana Mentor via Mentor Relay <{PAIR}>"
    assert str(outbound["To"]) == f"Ben Mentee <{BEN}>"
    assert str(outbound["Subject"]) == f"note from {PAIR}"
    assert outbound.get_content() == f"Hi Ben, Ana ({PAIR})\n"


def test_message_ids_are_the_relays_and_threading_comes_from_the_plan() -> None:
    outbound = rewrite(_original(), PLAN)
    assert outbound["Message-ID"] == "<r-2@relay.test>"
    assert outbound["In-Reply-To"] == "<ben-1@school.example.net>"
    assert outbound["References"] == "<ben-1@school.example.net>"
    unthreaded = rewrite(
        _original(), RewritePlan(**{**PLAN.__dict__, "in_reply_to": (), "references": ()})
    )
    assert "In-Reply-To" not in unthreaded and "References" not in unthreaded


def test_the_original_is_not_changed_and_a_missing_date_is_added() -> None:
    original = _original()
    before = original.as_bytes()
    del original["Date"]
    outbound = rewrite(original, PLAN)
    assert outbound["Date"]
    assert before.replace(b"Date: Mon, 02 Mar 2026 10:00:00 +0000\n", b"") == original.as_bytes()


def test_message_id_lists_are_read_in_order() -> None:
    value = "<a@x> junk <b@y>\n <c@z>"
    assert message_ids(value) == ["<a@x>", "<b@y>", "<c@z>"]
    assert first_message_id(value) == "<a@x>"
    assert first_message_id(None) is None and message_ids("no ids here") == []
