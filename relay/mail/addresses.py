"""Pair tokens, signed bounce (VERP) addresses and address normalising.

A pair address is ``<token>@<relay domain>``. Tokens are random, at least 64
bits, drawn from lowercase letters and digits that cannot be misread
(no 0/o, 1/l/i), and matched case-insensitively.

Every mail the relay sends has its own envelope sender
``bounce-<sealed id>-<signature>@<relay domain>``; the signature is an HMAC so
that a bounce can be trusted to name the message it is about, and forged
bounces can be dropped. The sealed id is the outbox id through a keyed
64-bit permutation (a four-round Feistel network with HMAC rounds), so two
addresses say nothing about how much mail went out between them.
"""

from __future__ import annotations

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
_SIGNATURE_LENGTH = 16
_TOKEN = re.compile(rf"^[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}$")
_BOUNCE = re.compile(rf"^{BOUNCE_PREFIX}([0-9a-f]{{16}})-([0-9a-f]{{{_SIGNATURE_LENGTH}}})$")
_HALF = 0xFFFFFFFF
_ROUNDS = 4


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def normalise(address: str) -> str:
    """Bare, lowercased address; '' when the text holds no plausible address."""
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
class BounceAddresses:
    """Makes and checks the signed envelope senders of outbound mail."""

    domain: str
    key: bytes

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
        local, address_domain = split(address)
        return address_domain == self.domain.lower() and local.startswith(BOUNCE_PREFIX)

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
        digest = hmac.new(self.key, f"verp-id:{step}:{half}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big")

    def _sign(self, outbox_id: int) -> str:
        digest = hmac.new(self.key, str(outbox_id).encode(), hashlib.sha256).hexdigest()
        return digest[:_SIGNATURE_LENGTH]
