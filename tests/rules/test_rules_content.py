"""Links, attachments and keywords."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from rulemail import check, flagged, parse, plain

from relay.rules.detectors.text import PhraseMatcher
from relay.rules.settings import RulesConfig

# --- links ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("see https://example.com/jobs?id=3.", "https://example.com/jobs?id=3"),
        ("go to www.bbc.co.uk/bitesize", "www.bbc.co.uk/bitesize"),
        ("it's on example.com/path for now", "example.com/path"),
        ("(http://tinyurl.com/abc)", "http://tinyurl.com/abc"),
    ],
)
def test_links_are_found(text: str, url: str) -> None:
    hits = check(plain(text))
    assert [h.rule for h in hits] == ["links"]
    assert flagged(hits) == [url]


@pytest.mark.parametrize(
    "text",
    ["I went home.To be honest it was fine", "Edit main.py and app.js", "e.g. this, i.e. that"],
)
def test_ordinary_full_stops_are_not_links(text: str) -> None:
    assert check(plain(text)) == []


def test_allow_list_covers_subdomains() -> None:
    config = RulesConfig.from_mapping({"links": {"allow_domains": ["wikipedia.org"]}}, "test")
    msg = plain("Read https://en.wikipedia.org/wiki/Engineering and https://evil.example/x")
    hits = check(msg, config)
    assert flagged(hits) == ["https://evil.example/x"]
    assert hits[0].reason == "link to evil.example"


def test_html_href_is_checked_even_behind_innocent_text() -> None:
    msg = EmailMessage()
    msg.set_content("Here's the form")
    msg.add_alternative(
        '<p>Here\'s <a href="https://forms.example.net/x?a=1&amp;b=2">the form</a></p>',
        subtype="html",
    )
    hits = check(parse(msg.as_bytes()))
    assert flagged(hits) == ["https://forms.example.net/x?a=1&amp;b=2"]


# --- attachments ------------------------------------------------------------------


def _with_attachments() -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Photos"
    msg.set_content("Two files attached.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="essay.pdf")
    msg.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="me.png")
    return parse(msg.as_bytes())


def test_every_attachment_is_held_by_default() -> None:
    hits = check(_with_attachments())
    assert [h.rule for h in hits] == ["attachments"]
    assert "essay.pdf (application/pdf)" in hits[0].reason
    assert "me.png (image/png)" in hits[0].reason


def test_allowed_types_pass_and_wildcards_work() -> None:
    config = RulesConfig.from_mapping(
        {"attachments": {"allow_types": ["application/pdf", "image/*"]}}, "test"
    )
    assert check(_with_attachments(), config) == []


def test_inline_image_counts_as_attachment() -> None:
    msg = EmailMessage()
    msg.set_content("logo below")
    msg.add_alternative('<p>logo <img src="cid:logo1"></p>', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(b"GIF89a", maintype="image", subtype="gif", cid="<logo1>")
    hits = check(parse(msg.as_bytes()))
    assert [h.rule for h in hits] == ["attachments"]
    assert "image/gif" in hits[0].reason


# --- keywords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["whatsapp", "WhatsApp", "w h a t s a p p", "wh@tsapp", "WH4TS-APP", "whats app",
     "ẃhátsápp", "wh.ats.app", "whatѕapp"],
)  # fmt: skip
def test_keyword_obfuscations_match_and_map_back(variant: str) -> None:
    text = f"are you on {variant} later?"
    found = list(PhraseMatcher(["whatsapp"]).finditer(text))
    assert [(text[s:e], p) for s, e, p in found] == [(variant, "whatsapp")]


def test_leet_and_spacing_variants_of_a_phrase() -> None:
    matcher = PhraseMatcher(["don't tell", "secret"])
    for text in ["d0n'7 t3ll anyone", "DONT TELL", "our s3cr3t", "our $ecret", "our s-e-c-r-e-t"]:
        assert list(matcher.finditer(text)), text


@pytest.mark.parametrize("text", ["Essex is lovely", "meet Upton later", "a secretary job"])
def test_keywords_respect_word_boundaries(text: str) -> None:
    assert list(PhraseMatcher(["sex", "meet up", "secret"]).finditer(text)) == []


def test_keyword_rule_reads_files_and_reports_the_phrase(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("# safeguarding list\nmeet up\n\nour secret\n")
    config = RulesConfig.from_mapping(
        {"keywords": {"phrases": ["home alone"], "files": ["words.txt"]}}, "relay.toml", tmp_path
    )
    assert config.phrases == ("home alone", "meet up", "our secret")
    hits = check(plain("Can we m33t-up? It's our s e c r e t."), config)
    assert sorted(h.reason for h in hits) == ["keyword: meet up", "keyword: our secret"]
    assert sorted(flagged(hits)) == ["m33t-up", "our s e c r e t"]
