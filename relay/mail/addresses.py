"""Pair tokens, signed addresses (bounces, check-ins) and address normalising.

A pair address is ``<token>@<relay domain>``. Tokens are random, at least 64
bits, drawn from lowercase letters and digits that cannot be misread
(no 0/o, 1/l/i), and matched case-insensitively.

Every mail the relay sends has its own envelope sender
``bounce-<sealed id>-<signature>@<relay domain>``; the signature is an HMAC so
that a bounce can be trusted to name the message it is about, and forged
bounces can be dropped. The sealed id is the outbox id through a keyed
64-bit permutation (a four-round Feistel network with HMAC rounds), so two
addresses say nothing about how much mail went out between them. Check-in questions are sent from
``checkin-<checkin id>-<signature>@<relay domain>`` with the same scheme and key,
match offers and invitations from ``offer-<id>-<signature>@``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

TOKEN_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
TOKEN_LENGTH = 13  # 31**13 is about 2**64
BOUNCE_PREFIX = "bounce-"
CHECKIN_PREFIX = "checkin-"
UNSUBSCRIBE_PREFIX = "unsubscribe-"
OFFER_PREFIX = "offer-"
_SIGNATURE_LENGTH = 16
_TOKEN = re.compile(rf"^[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}$")
_BOUNCE = re.compile(rf"^{BOUNCE_PREFIX}([0-9a-f]{{16}})-([0-9a-f]{{{_SIGNATURE_LENGTH}}})$")
_HALF = 0xFFFFFFFF
_ROUNDS = 4
_SIGNED = re.compile(rf"^(\d{{1,20}})-([0-9a-f]{{{_SIGNATURE_LENGTH}}})$")


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def normalise(address: str) -> str:
    """Bare, lowercased address; '' when the text holds no plausible address."""
    # The same few addresses (sender, pair, participants) are read many times per message.
    if len(address) > _CACHED_LENGTH:
        return _normalise.__wrapped__(address)
    return _normalise(address)


_CACHED_LENGTH = 320  # an address is at most 254; a longer text is parsed, not kept


@functools.lru_cache(maxsize=4096)
def _normalise(address: str) -> str:
    _, bare = parseaddr(address)
    bare = bare.strip().lower()
    local, at, domain = bare.rpartition("@")
    if not at or not local or not domain or " " in bare:
        return ""
    return bare


def split(address: str) -> tuple[str, str]:
    local, _, domain = normalise(address).rpartition("@")
    return local, domain


def pair_address(token: str, domain: str) -> str:
    return f"{token}@{domain}"


def token_of(address: str, domain: str) -> str | None:
    """The pair token an address on the relay domain names, or None."""
    local, address_domain = split(address)
    if address_domain != domain.lower() or not _TOKEN.match(local):
        return None
    return local


def display_address(display_name: str, address: str) -> str:
    """A From/To header value with the display name quoted and encoded as needed."""
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=display_name, username=local, domain=domain))


@dataclass(frozen=True)
class SignedAddresses:
    """Makes and checks ``<prefix><id>-<hmac>@<domain>`` addresses (bounces, check-ins).

    One HMAC scheme for every signed address; the prefix is part of what is
    signed, so a bounce signature is never a valid check-in signature.
    """

    domain: str
    key: bytes
    prefix: str = BOUNCE_PREFIX

    def address(self, item_id: int) -> str:
        return f"{self.prefix}{item_id}-{self._sign(item_id)}@{self.domain}"

    def item_id(self, address: str) -> int | None:
        """The id an address names; None if it is not one of ours or is forged."""
        local, address_domain = split(address)
        if address_domain != self.domain.lower() or not local.startswith(self.prefix):
            return None
        match = _SIGNED.match(local[len(self.prefix) :])
        if match is None:
            return None
        item_id = int(match.group(1))
        if not hmac.compare_digest(match.group(2), self._sign(item_id)):
            return None
        return item_id

    def is_ours(self, address: str) -> bool:
        """Whether the address has this prefix on the relay domain (signed or not)."""
        local, address_domain = split(address)
        return address_domain == self.domain.lower() and local.startswith(self.prefix)

    def _sign(self, item_id: int) -> str:
        # Bounce signatures keep their original input (the bare id), so addresses
        # already out in the world stay valid; other prefixes sign "prefix:id".
        text = str(item_id) if self.prefix == BOUNCE_PREFIX else f"{self.prefix}{item_id}"
        return self._mac(text.encode()).hex()[:_SIGNATURE_LENGTH]

    def _mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of data under the key."""
        # A copy of the keyed template: hmac.digest(key, data, "sha256") looks the digest
        # up by name and hashes the key's pads on every call (five calls per outbox row).
        mac = self._keyed.copy()
        mac.update(data)
        return mac.digest()

    @functools.cached_property
    def _keyed(self) -> hmac.HMAC:
        return hmac.new(self.key, digestmod=hashlib.sha256)


@dataclass(frozen=True)
class BounceAddresses(SignedAddresses):
    """The signed envelope senders of outbound mail."""

    def for_outbox(self, outbox_id: int) -> str:
        sealed = self._permute(outbox_id, inverse=False)
        return f"{BOUNCE_PREFIX}{sealed:016x}-{self._sign(outbox_id)}@{self.domain}"

    def outbox_id(self, address: str) -> int | None:
        """The outbox id a bounce address names; None if it is not ours or is forged."""
        local, address_domain = split(address)
        match = _BOUNCE.match(local)
        if address_domain != self.domain.lower() or match is None:
            return None
        outbox_id = self._permute(int(match.group(1), 16), inverse=True)
        if not hmac.compare_digest(match.group(2), self._sign(outbox_id)):
            return None
        return outbox_id

    def is_bounce_address(self, address: str) -> bool:
        return self.is_ours(address)

    def _permute(self, value: int, inverse: bool) -> int:
        left, right = (value >> 32) & _HALF, value & _HALF
        if not inverse:
            for step in range(_ROUNDS):
                left, right = right, left ^ self._round(step, right)
        else:
            for step in reversed(range(_ROUNDS)):
                left, right = right ^ self._round(step, left), left
        return (left << 32) | right

    def _round(self, step: int, half: int) -> int:
        digest = self._mac(f"verp-id:{step}:{half}".encode())
        return int.from_bytes(digest[:4], "big")

    def checkin_addresses(self) -> SignedAddresses:
        """The same key and scheme for check-in reply addresses."""
        return SignedAddresses(self.domain, self.key, CHECKIN_PREFIX)

    def unsubscribe_addresses(self) -> SignedAddresses:
        """The same key and scheme for List-Unsubscribe (per participant) addresses."""
        return SignedAddresses(self.domain, self.key, UNSUBSCRIBE_PREFIX)

    def offer_addresses(self) -> SignedAddresses:
        """The same key and scheme for match offers and invitations (relay/offers)."""
        return SignedAddresses(self.domain, self.key, OFFER_PREFIX)
