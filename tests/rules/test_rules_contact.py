"""The contact rule: what a moderator must see held, and what must pass."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from rulemail import (
    CONTEXT,
    GMAIL_QP_HTML,
    OUTLOOK_LATIN1,
    PAIR,
    THUNDERBIRD_BASE64,
    check,
    flagged,
    parse,
    plain,
)

from relay.mail.text import MailView
from relay.rules.detectors.contacts import find_contacts
from relay.rules.engine import build_rules, run_rules
from relay.rules.settings import RulesConfig

MUST_HIT = [
    ("UK mobile", "my mobile is 07700 900123", "07700 900123"),
    ("UK mobile, international", "Reach me on +44 7700 900123 any time", "+44 7700 900123"),
    ("US bracketed", "It's (555) 123-4567 at home", "(555) 123-4567"),
    ("US dotted", "call 555.123.4567 tonight", "555.123.4567"),
    ("US international", "my cell: +1-202-555-0143", "+1-202-555-0143"),
    ("no spaces", "07700900123", "07700900123"),
    ("French", "appelez-moi au 06 12 34 56 78", "06 12 34 56 78"),
    ("short with cue", "text my number 555 0143", "555 0143"),
    ("spelled out", "it's zero seven seven zero zero nine zero zero one two three", None),
    ("email", "write to jess.patel.1998@gmail.com instead", "jess.patel.1998@gmail.com"),
    (
        "email full-width",
        "write to ｊｅｓｓ＠ｇｍａｉｌ．ｃｏｍ instead",
        "ｊｅｓｓ＠ｇｍａｉｌ．ｃｏｍ",
    ),
    ("email small at", "write to jess﹫gmail.com instead", "jess﹫gmail.com"),
    ("handle full-width at", "follow ＠jess_k99", "＠jess_k99"),
    ("email at dot", "it's jess dot patel at gmail dot com", None),
    ("email bracket", "jess.patel [at] outlook.com", None),
    ("street", "I live at 221B Baker Street, come round", "221B Baker Street"),
    ("street short", "we're at 12 Main St.", "12 Main St."),
    ("UK postcode", "the postcode is SW1A 1AA", "SW1A 1AA"),
    ("WhatsApp", "are you on WhatsApp?", "WhatsApp"),
    ("Snapchat handle", "my snap is jess_99", "my snap is jess_99"),
    ("Instagram", "Instagram is easier", "Instagram"),
    ("Telegram", "use Telegram", "Telegram"),
    ("Discord", "join my Discord server", "Discord"),
    ("TikTok", "saw it on tik tok", "tik tok"),
    ("Signal", "message me on Signal", "on Signal"),
    ("at handle", "follow @jess_k99", "@jess_k99"),
    ("text me", "just text me", "text me"),
    ("add me on", "add me on LinkedIn", "add me on"),
    ("call me", "call me tonight", "call me"),
    ("call me Monday", "Call me Monday after school", "Call me"),
    ("dm me", "dm me", "dm me"),
    ("personal email", "send it to my personal email", "my personal email"),
    ("ask for number", "what's your number?", "what's your number"),
    ("off the relay", "let's talk outside the platform", "outside the platform"),
]


@pytest.mark.parametrize(("label", "text", "expected"), MUST_HIT, ids=[m[0] for m in MUST_HIT])
def test_contact_details_are_found(label: str, text: str, expected: str | None) -> None:
    hits = check(plain(text))
    contact = [hit for hit in hits if hit.rule == "contact"]
    assert contact, f"{label}: nothing flagged in {text!r}"
    if expected is not None:
        assert expected in flagged(contact)


# What mentors and mentees actually write about: none of it may be held.
BENIGN = [
    "Hi Sam, it was great to meet you on Tuesday and hear about your plans for sixth form.",
    "Shall we talk again next week at 3:30pm, or is 4.15 better for you?",
    "My office hours are 10-11am, so any time after that works for me.",
    "The UCAS deadline is 2024-05-06 and the open day is on 12/05/2024.",
    "I started my apprenticeship in 2019 and qualified in 2023.",
    "You got 87% in the mock chemistry paper, which is a grade 8, brilliant!",
    "The course costs £9,250 a year, and the bursary is worth $1,500.",
    "We had our first session in room 101, and the careers fair is in Hall B.",
    "Read chapter 12 before next time and try questions 3 to 7.",
    "I use Python 3.11.4 at work, and we just moved to version 10.0.19041.",
    "You can call me Sam, everyone does.",
    "A strong signal to employers is showing you finish what you start.",
    "My team of 12 engineers ships a release every 2 weeks.",
    "Between 9am and 5pm I'm at the office, then I pick up my kids.",
    "Year 10 and Year 11 are about building good revision habits.",
    "The ISBN is 978-0-13-110362-7 if you want to order the textbook.",
    "Try to write 500 words by Friday and 1,000 by the end of the month.",
    "Put it on your LinkedIn profile once the project is done.",
    "I scored 1450 on the SAT back in 2012, so don't worry too much about it.",
    "When we chat next, bring the questions you wrote down.",
    "Be real with yourself about how much time revision takes.",
    "Interviews usually run 45-60 minutes, with 10 minutes for your questions.",
    "Reply to this address, k7m2q9@relay.example.org, as usual.",
    "The meeting is on 06/05 at 14:00 and should finish by 15:30.",
]


def test_ordinary_mentoring_talk_passes() -> None:
    msg = plain("\n".join(BENIGN))
    assert check(msg) == []


@pytest.mark.parametrize("sentence", BENIGN)
def test_each_benign_sentence_passes_contact_detection(sentence: str) -> None:
    assert find_contacts(sentence, frozenset({PAIR})) == []


def test_pair_address_is_allowed_but_a_real_address_is_not() -> None:
    hits = check(plain(f"Write to {PAIR} or to sam.jones@example.net"))
    assert flagged(hits) == ["sam.jones@example.net"]


def test_phone_in_quoted_printable_html_part_is_found() -> None:
    hits = check(parse(GMAIL_QP_HTML))
    contact = {hit.reason: hit for hit in hits if hit.rule == "contact"}
    phone = contact["phone number"].spans
    assert len(phone) == 1
    # The span locates the number in the decoded HTML, tags and entity included.
    assert phone[0].text == "07700</b>&nbsp;900123"
    assert "offer to move off the relay" in contact


def test_handle_in_base64_text_part_is_found() -> None:
    hits = check(parse(THUNDERBIRD_BASE64))
    assert "@sam.j_2008" in flagged(hits)
    assert "Insta" in flagged(hits)


def test_phone_in_iso_8859_1_part_is_found() -> None:
    view = MailView.from_message(parse(OUTLOOK_LATIN1))
    assert "Très bien" in view.parts[0].text
    hits = run_rules(build_rules(), view, CONTEXT)
    assert flagged(hits) == ["06 12 34 56 78"]


def test_phone_in_attachment_filename_is_found() -> None:
    msg = EmailMessage()
    msg["Subject"] = "My CV"
    msg.set_content("Here is my CV as promised.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                       filename="CV Jess Patel 07700 900123.pdf")  # fmt: skip
    hits = check(parse(msg.as_bytes()), RulesConfig(allow_types=("application/pdf",)))
    assert [(h.rule, h.reason) for h in hits] == [("contact", "phone number")]
    span = hits[0].spans[0]
    assert (span.where, span.text) == ("filename", "07700 900123")


def test_handle_in_subject_is_found() -> None:
    hits = check(plain("See subject", subject="add me on snapchat"))
    assert {span.where for hit in hits for span in hit.spans} == {"subject"}


def test_detection_kinds_can_be_switched_off() -> None:
    config = RulesConfig.from_mapping({"contact": {"detect": ["email"]}}, "test")
    assert check(plain("call me on 07700 900123"), config) == []
