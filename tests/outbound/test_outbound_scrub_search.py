"""The search that replaced the per-pair pattern finds exactly the old pattern's matches.

Each test compares relay.outbound.scrub_search with the old one-pattern
builder kept verbatim in tests/outbound/scrub_reference.py: the same spans,
the same output, on texts built from the addresses' forms with invisible
characters, tags and near-misses between them, as an attacker would write
them (mixed case, case look-alikes such as the Kelvin sign, entities with
and without ";", soft hyphens, zero-width characters, tags inside).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.outbound import scrub_forms, scrub_search
from relay.outbound.scrub_text import Scrubber, replace_addresses
from tests.outbound.scrub_reference import _address_pattern, reference_pattern

ANA = "ana.real@mentors.example.org"
BEN = "ben-k_s+i@school.example.net"
PAIR = "k7q2m9x4ab3cd@relay.test"

# Characters an address may hold, chosen to collide with the forms' own characters.
ADDRESS_CHARS = "aeiksxbdr0123456789._+-&#;%=<>/\\w\u00e9\u017f"
LOOKALIKES = {"k": ["K", "\u212a"], "i": ["I", "\u0130", "\u0131"], "s": ["S", "\u017f"]}
NAMED = {"@": ["&commat;"], ".": ["&period;"], "_": ["&lowbar;"], "+": ["&plus;"]}
NAMED["-"] = ["&dash;", "&hyphen;"]
HIDDEN = [
    "<wbr>", "<WBR />", "<wbr/>", "&shy;", "&SHY;", "&#173;", "&#0173;", "&#xAD;", "&#x00ad;",
    "&#8203;", "&#x200B;", "&zwj;", "&zwnj;", "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060",
]  # fmt: skip
TAGS = ["<span>", "</span>", "<b class='x'>", '<a href="mailto:x">', "<!-- c -->"]
NOISE = [
    "&", "#", ";", "%", "<", ">", "@", "=", "\\", "x", "0", "4", " ", "/", "&#", "&#x",
    "&#173", "<wbr", "%4", "&#64", "\n", "\u00ad", "a", "K",
]  # fmt: skip


def reference_spans(addresses: list[str], text: str, markup: bool) -> list[tuple[int, int]]:
    pattern = reference_pattern(addresses, markup=markup)
    assert pattern is not None
    return [found.span() for found in pattern.finditer(text)]


@st.composite
def char_form(draw: st.DrawFn, char: str) -> str:
    code = ord(char)
    choices = [char, char.upper(), *LOOKALIKES.get(char, [])]
    choices.append(f"%{code:02x}".upper() if draw(st.booleans()) else f"%{code:02x}")
    zeros = "0" * draw(st.integers(0, 2))
    semicolon = draw(st.sampled_from([";", "", ";", "", ";", ";;"]))
    choices.append(f"&#{zeros}{code}{semicolon}")
    choices.append(f"&#{draw(st.sampled_from('xX'))}{zeros}{code:x}{semicolon}")
    choices += [form.upper() if draw(st.booleans()) else form for form in NAMED.get(char, [])]
    if char == "@":
        choices += ["=40", "\\u0040", "\\x40", "\\U0040", "\\X40"]
    return draw(st.sampled_from(choices))


@st.composite
def written(draw: st.DrawFn, address: str, markup: bool) -> str:
    """The address (or a piece of it) written with random forms, hidden pieces and slips."""
    slips = draw(st.integers(0, 3)) == 0  # a quarter: cut short, or noise inside
    start = draw(st.integers(0, 2)) if slips and draw(st.booleans()) else 0
    stop = len(address) - (draw(st.integers(0, 2)) if slips and draw(st.booleans()) else 0)
    gaps = HIDDEN + (TAGS if markup else []) + (NOISE[:4] + TAGS if slips else [])
    out = []
    for char in address[start:stop]:
        out.append(draw(char_form(char)))
        if draw(st.integers(0, 3)) == 0:
            out += [draw(st.sampled_from(gaps)) for _ in range(draw(st.integers(1, 3)))]
    return "".join(out)


@st.composite
def texts(draw: st.DrawFn, addresses: list[str], markup: bool) -> str:
    chunks = draw(
        st.lists(
            st.one_of(
                st.sampled_from(NOISE + HIDDEN + TAGS),
                st.text(alphabet=ADDRESS_CHARS + " @", max_size=6),
                st.sampled_from(addresses).flatmap(lambda a: written(a, markup)),
            ),
            max_size=12,
        )
    )
    return "".join(chunks)


weird_addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=ADDRESS_CHARS + "@", min_size=1, max_size=6),
    st.text(alphabet=ADDRESS_CHARS, min_size=1, max_size=6),
)


def check(addresses: list[str], text: str, markup: bool) -> None:
    ordered = scrub_forms.search_order(addresses)
    assert scrub_search.find(ordered, text, markup) == reference_spans(addresses, text, markup)
    expected = reference_pattern(addresses, markup=markup)
    assert expected is not None
    assert scrub_search.replace(ordered, text, PAIR, markup) == expected.sub(PAIR, text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_registered_addresses_in_every_form_match_as_the_old_pattern(
    data: st.DataObject, markup: bool
) -> None:
    addresses = [ANA, BEN]
    check(addresses, data.draw(texts(addresses, markup)), markup)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(weird_addresses, min_size=1, max_size=3), st.data(), st.booleans())
def test_odd_addresses_whose_characters_collide_with_the_forms_match_as_the_old_pattern(
    addresses: list[str], data: st.DataObject, markup: bool
) -> None:
    check(addresses, data.draw(texts(addresses, markup)), markup)


@settings(max_examples=200, deadline=None)
@given(st.lists(weird_addresses, min_size=1, max_size=3), st.booleans())
def test_the_one_pattern_is_still_the_old_one_character_for_character(
    addresses: list[str], markup: bool
) -> None:
    ordered = scrub_forms.search_order(addresses)
    old = _address_pattern(ordered, markup)
    assert scrub_forms.pattern_source(ordered, markup) == old.pattern


def test_every_form_the_old_tests_name_is_found_in_text_and_markup() -> None:
    for form in [
        "ANA.Real@Mentors.Example.ORG",
        "ana.real%40mentors%2eexample%2eorg",
        "ana.real&#x40;mentors&#46;example&#x2E;org",
        "ana.real&commat;mentors&period;example.org",
        "ana.real\\u0040mentors.example.org",
        "ana.real=40mentors.example.org",
        "ana.re<wbr>al@mentors.exam<wbr/>ple.org",
        "ana.real\u00ad@mentors.\u200bexample.org",
        "ana.real&shy;@mentors.example.org",
        "ana.re&#x200b;al&#173;@ment\u2060ors.example.org",
    ]:
        assert replace_addresses(f"to {form}.", [ANA], PAIR) == f"to {PAIR}."
        assert Scrubber([ANA], PAIR).markup(f"<b>{form}</b>") == f"<b>{PAIR}</b>"
    split = "a<span>na</span>.real@<i>mentors</i>.example.org"
    assert Scrubber([ANA], PAIR).markup(split) == PAIR
    check([ANA], split, True)


def test_no_form_of_at_starts_inside_another() -> None:
    """scrub_search finds the "@" forms without a lookahead: none may hide inside another."""
    forms = [piece.source for piece in scrub_forms.char_pieces("@")]
    written = {
        re.sub(r"\\(.)", r"\1", form).replace("0*", "00").replace(";?", ";") for form in forms
    }
    assert len(written) == len(forms) and "&#0064;" in written
    for form in written:
        assert form[0] in "@%&=\\" and not any(mark in form[1:] for mark in "@%&=\\")
    text = "".join(sorted(written)) + "ana.real" + "".join(sorted(written))
    starts = [text.find(form, at) for at in range(len(text)) for form in written]
    assert scrub_search._AT_FORMS.findall(text) and sorted({s for s in starts if s >= 0}) == [
        found.start() for found in scrub_search._AT_FORMS.finditer(text)
    ]


def test_where_the_search_gives_up_the_old_pattern_is_compiled_and_gives_the_same() -> None:
    hidden_run = "ana" + "<wbr>" * 2 * scrub_search.DEPTH_BOUND + ".real@mentors.example.org"
    many_ats = "ana.real@" * (scrub_search.STEP_BUDGET // 2) + "mentors.example.org"
    old = reference_pattern([ANA])
    assert old is not None
    for text in (hidden_run, many_ats):
        assert scrub_search.find((ANA,), text, False) is None  # gave up
        assert replace_addresses(text, [ANA], PAIR) == old.sub(PAIR, text)
    assert PAIR in replace_addresses(hidden_run, [ANA], PAIR)
    no_at = "a no-at-sign.example b"  # nothing to anchor on
    assert replace_addresses(no_at, ["no-at-sign.example"], PAIR) == f"a {PAIR} b"
    escaped = reference_pattern([ANA])
    assert escaped is not None
    assert replace_addresses(ANA, [ANA], r"x\g<0>") == escaped.sub(r"x\g<0>", ANA)


def test_a_new_pair_compiles_no_pattern() -> None:
    scrub_forms.compiled_pattern.cache_clear()
    letter = (
        f"Thanks!\n\nOn Mon, Partner <{PAIR}> wrote:\n> see you\n"
        '<a href="mailto:x@y.example">x</a> mentor.7&#64;bench.example'
    )
    for number in range(50):
        scrubber = Scrubber([f"mentor.{number}@bench.example", f"mentee.{number}@s.example"], PAIR)
        scrubber.text(letter)
        scrubber.markup(letter)
    assert scrub_forms.compiled_pattern.cache_info().currsize == 0
    assert re.search(re.escape(PAIR), scrubber.text(letter))
