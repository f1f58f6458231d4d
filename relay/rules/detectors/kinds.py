"""The kinds of contact detail the detectors find, and the reason each one gives.

The names are what ``[rules.contact] detect = [...]`` accepts; the reasons are
what a moderator reads. A module of its own, without patterns, so reading
relay.toml (relay.config -> relay.rules.settings) does not compile the
detectors.
"""

from __future__ import annotations

PHONE = "phone number"
EMAIL = "e-mail address"
POSTAL = "postal address"
HANDLE = "messenger or social handle"
OFFER = "offer to move off the relay"
# The names [rules.contact] detect = [...] accepts, and the reason each gives.
CONTACT_KINDS = {"phone": PHONE, "email": EMAIL, "postal": POSTAL, "handle": HANDLE, "offer": OFFER}
