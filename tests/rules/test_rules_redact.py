"""Redaction and span marking, and reading awkward messages."""

from __future__ import annotations

from email.message import EmailMessage

from rulemail import GMAIL_QP_HTML, OUTLOOK_LATIN1, check, flagged, parse, plain

from relay.mail.text import MailView, attachments, text_parts
from relay.outbound.redact import REMOVED, mark_spans, redact
from relay.rules.base import Hit, Span


def _visible(msg: EmailMessage) -> str:
    view = MailView.from_message(msg)
    return "\n".join([view.subject, *(p.visible.text for p in view.parts)])


def test_redacted_message_no_longer_holds_the_spans_and_still_parses() -> None:
    msg = parse(GMAIL_QP_HTML)
    hits = check(msg)
    cleaned = parse(redact(msg, hits).as_bytes())
    text = _visible(cleaned)
    assert "900123" not in text and "07700" not in text
    assert REMOVED in text
    assert "Thanks for the advice about the interview!" in text
    assert check(cleaned) == []
    assert msg.as_bytes() == parse(GMAIL_QP_HTML).as_bytes()  # the original is untouched


def test_redaction_keeps_a_charset_that_can_encode_the_text() -> None:
    msg = parse(OUTLOOK_LATIN1)
    cleaned = parse(redact(msg, check(msg)).as_bytes())
    assert cleaned.get_content_charset() == "iso-8859-1"
    assert cleaned.get_content() == f"Très bien, appelez-moi au {REMOVED} après les cours.\n"


def test_untouched_parts_keep_their_bytes_and_filenames_are_redacted() -> None:
    msg = EmailMessage()
    msg["Subject"] = "CV"
    msg.set_content("Attached, and text me on 07700 900123")
    msg.add_attachment(
        b"%PDF", maintype="application", subtype="pdf", filename="cv 07700900123.pdf"
    )
    msg.add_attachment("notes, no numbers", filename="notes.txt", disposition="attachment")
    msg = parse(msg.as_bytes())
    cleaned = parse(redact(msg, check(msg)).as_bytes())
    assert [a.filename for a in attachments(cleaned)] == [f"cv {REMOVED}.pdf", "notes.txt"]
    before, after = list(msg.walk()), list(cleaned.walk())
    assert before[3].as_bytes() == after[3].as_bytes()
    assert after[2].get_payload(decode=True) == b"%PDF"
    assert text_parts(cleaned)[0].text == f"Attached, and {REMOVED} on {REMOVED}\n"


def test_stale_offsets_are_found_again_by_text() -> None:
    msg = plain("first line\ncall 07700 900123")
    hits = [Hit("contact", "phone number", (Span(0, 0, 12, "07700 900123"),))]
    assert "07700" not in _visible(redact(msg, hits))


def test_mark_spans_for_relay_show() -> None:
    msg = plain("Ring me on 07700 900123 or add me on insta.")
    hits = check(msg)
    part = text_parts(msg)[0]
    spans = [s for h in hits for s in h.spans if s.part == part.index and s.where == "body"]
    marked = mark_spans(part.text, spans)
    assert ">>>07700 900123<<<" in marked and ">>>insta<<<" in marked
    assert ">>>Ring me<<<" in marked
    assert "\x1b[1;7m07700 900123\x1b[0m" in mark_spans(part.text, spans, ansi=True)
    assert flagged(hits).count("07700 900123") == 1


def test_bad_charset_and_broken_encoding_never_raise() -> None:
    raw = (
        b"Subject: hi\nMIME-Version: 1.0\n"
        b'Content-Type: text/plain; charset="x-no-such-charset"\n'
        b"Content-Transfer-Encoding: base64\n\n"
        b"Y2FsbCAwNzcwMCA5MDAxMjM=!!not base64\n"
    )
    view = MailView.from_message(parse(raw))
    assert "call 07700 900123" in view.parts[0].text
    raw8 = (
        b"Subject: hi\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
        b"Content-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 at 10:30, caf\xe9 \xff\n"
    )
    assert text_parts(parse(raw8))[0].text.startswith("caf")


def test_html_visible_text_and_hrefs() -> None:
    msg = EmailMessage()
    msg.set_content("x")
    msg.add_alternative(
        "<html><head><style>@media x {p{color:red}}</style></head><body>"
        '<p>Fish&nbsp;&amp;&nbsp;chips</p><td>12</td><td>34</td><a href="http://a.example/">a</a>'
        "<script>var phone='07700900123'</script></body></html>",
        subtype="html",
    )
    part = text_parts(parse(msg.as_bytes()))[1]
    visible = part.visible.text
    assert "Fish\xa0&\xa0chips" in visible and "1234" not in visible
    assert "@media" not in visible and "07700" not in visible
    assert [h.text for h in part.hrefs] == ["http://a.example/"]
    start = part.visible.text.index("chips")
    s, e = part.visible.source_range(start - 1, start + 5)
    assert part.text[s:e] == "&nbsp;chips"


def test_a_discord_name_is_flagged_with_its_discriminator() -> None:
    msg = plain("Add me on discord: benny#1234 and we can talk there.")
    hits = check(msg)
    flagged_text = [span.text for hit in hits for span in hit.spans]
    assert any(text.endswith("benny#1234") for text in flagged_text), flagged_text
    text = _visible(parse(redact(msg, hits).as_bytes()))
    assert "benny" not in text and "1234" not in text and REMOVED in text
