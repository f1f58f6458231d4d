"""Pair tokens, signed bounce addresses and normalising, called directly."""

from __future__ import annotations

import hmac
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mail.addresses import (
    BOUNCE_PREFIX,
    TOKEN_ALPHABET,
    TOKEN_LENGTH,
    BounceAddresses,
    display_address,
    new_token,
    normalise,
    pair_address,
    token_of,
)

DOMAIN = "relay.test"


def test_tokens_use_only_unambiguous_characters_and_carry_64_bits() -> None:
    assert not set(TOKEN_ALPHABET) & set("0o1li")
    assert len(TOKEN_ALPHABET) ** TOKEN_LENGTH >= 2**64
    tokens = {new_token() for _ in range(500)}
    assert len(tokens) == 500
    assert all(re.fullmatch(f"[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}", token) for token in tokens)


def test_a_pair_address_is_read_back_in_any_case_and_nothing_else_is() -> None:
    token = new_token()
    address = pair_address(token, DOMAIN)
    assert token_of(address, DOMAIN) == token
    assert token_of(f"Ben <{address.upper()}>", DOMAIN) == token
    assert token_of(address, "other.test") is None
    assert token_of(f"{token}x@{DOMAIN}", DOMAIN) is None  # one character too many
    assert token_of(f"postmaster@{DOMAIN}", DOMAIN) is None
    assert token_of(f"{token[:-1]}0@{DOMAIN}", DOMAIN) is None  # 0 is not in the alphabet


def test_normalise_keeps_a_bare_lowercased_address_or_nothing() -> None:
    assert normalise('"Ana Real" <Ana.Real@Example.ORG>') == "ana.real@example.org"
    assert normalise("no address here") == ""
    assert normalise("@example.org") == ""


def test_display_address_quotes_and_encodes_names() -> None:
    assert display_address("Ana, via Relay", "x@relay.test") == '"Ana, via Relay" <x@relay.test>'
    assert display_address("Zoë", "x@relay.test") == "Zoë <x@relay.test>"


def test_signed_bounce_addresses_verify_and_reject_tampering() -> None:
    bounces = BounceAddresses(DOMAIN, b"k" * 32)
    address = bounces.for_outbox(42)
    local = address.split("@")[0]
    # The outbox id is sealed (a keyed permutation): the address does not show 42.
    assert re.fullmatch(r"bounce-[0-9a-f]{16}-[0-9a-f]{16}", local)
    assert int(local.split("-")[1], 16) != 42
    assert bounces.outbox_id(address) == 42
    assert bounces.outbox_id(address.upper()) == 42
    _, sealed, signature = local.split("-")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert bounces.outbox_id(f"bounce-{sealed}-{flipped}@{DOMAIN}") is None  # forged signature
    other = bounces.for_outbox(43).split("@")[0].split("-")[1]
    assert bounces.outbox_id(f"bounce-{other}-{signature}@{DOMAIN}") is None  # another row
    assert bounces.outbox_id(f"bounce-42-{signature}@{DOMAIN}") is None  # the old, plain form
    assert bounces.outbox_id(f"{local}@other.test") is None  # another domain
    assert BounceAddresses(DOMAIN, b"j" * 32).outbox_id(address) is None  # another key
    assert bounces.is_bounce_address(f"bounce-anything@{DOMAIN}")
    assert not bounces.is_bounce_address(pair_address(new_token(), DOMAIN))


def test_signed_addresses_already_sent_stay_the_same() -> None:
    # Written down from the code before any change to the signing: bounces of mail
    # already out, and replies to check-ins and offers, must still be recognised.
    bounces = BounceAddresses(DOMAIN, b"k" * 32)
    assert [bounces.for_outbox(i) for i in (1, 42, 2**40 + 7)] == [
        "bounce-e12bb6f637775fe9-707db812ff6c5408@relay.test",
        "bounce-faa8c78cb7de6fa6-09b9733fee8d8c00@relay.test",
        "bounce-f74adb6b4f23ba38-7d148a585824be84@relay.test",
    ]
    assert bounces.outbox_id("bounce-f74adb6b4f23ba38-7d148a585824be84@relay.test") == 2**40 + 7
    checkins = bounces.checkin_addresses()
    assert checkins.address(42) == "checkin-42-7b41d10ddce195a9@relay.test"
    assert checkins.item_id("checkin-1-09758adb18bb296b@relay.test") == 1
    assert bounces.offer_addresses().address(9) == "offer-9-c285531041c4a274@relay.test"


def _old_sign(key: bytes, prefix: str, item_id: int) -> str:
    """The signing as it was written before the keyed template (hmac.digest per call)."""
    text = str(item_id) if prefix == BOUNCE_PREFIX else f"{prefix}{item_id}"
    return hmac.digest(key, text.encode(), "sha256").hex()[:16]


def _old_for_outbox(key: bytes, outbox_id: int) -> str:
    left, right = (outbox_id >> 32) & 0xFFFFFFFF, outbox_id & 0xFFFFFFFF
    for step in range(4):
        digest = hmac.digest(key, f"verp-id:{step}:{right}".encode(), "sha256")
        left, right = right, left ^ int.from_bytes(digest[:4], "big")
    sealed = (left << 32) | right
    return f"bounce-{sealed:016x}-{_old_sign(key, BOUNCE_PREFIX, outbox_id)}@{DOMAIN}"


@settings(max_examples=500)
@given(st.binary(min_size=1, max_size=80), st.integers(min_value=0, max_value=2**64 - 1))
def test_signed_addresses_are_those_of_the_one_call_hmac(key: bytes, item_id: int) -> None:
    bounces = BounceAddresses(DOMAIN, key)
    address = bounces.for_outbox(item_id)
    assert address == _old_for_outbox(key, item_id)
    assert bounces.outbox_id(address) == item_id
    for signed in (bounces.checkin_addresses(), bounces.offer_addresses()):
        expected = _old_sign(key, signed.prefix, item_id)
        assert signed.address(item_id) == f"{signed.prefix}{item_id}-{expected}@{DOMAIN}"
