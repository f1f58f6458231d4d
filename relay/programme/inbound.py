"""Mail to the programme's own addresses: check-in answers and List-Unsubscribe.

Owns the intake branch for ``checkin-<id>-<sig>@`` and ``unsubscribe-<id>-<sig>@``
(next to the bounce branch): such mail is never relayed; it is stored (an
answer, an opt-out) or dropped, and the client gets the same answer either way.
"""

from __future__ import annotations

from email.message import EmailMessage

from relay.mail.addresses import BounceAddresses, normalise
from relay.programme import checkins, reminders
from relay.rules.base import Rule
from relay.store.db import Store
from relay.store.states import utcnow


def is_programme_address(signed: BounceAddresses, address: str) -> bool:
    return signed.checkin_addresses().is_ours(address) or (
        signed.unsubscribe_addresses().is_ours(address)
    )


def take(
    store: Store,
    signed: BounceAddresses,
    rules: list[Rule],
    recipients: list[str],
    message: EmailMessage,
) -> None:
    unsubscribe = signed.unsubscribe_addresses()
    from_address = _from_address(message)  # an answer needs its sender; an opt-out does not
    with store.session() as session:
        for address in recipients:
            if unsubscribe.is_ours(address):
                reminders.opt_out(session, unsubscribe, address)
            elif from_address:
                checkins.record_answer(
                    session,
                    signed.checkin_addresses(),
                    rules,
                    address,
                    from_address,
                    message,
                    utcnow(),
                )


def _from_address(message: EmailMessage) -> str:
    try:
        headers = message.get_all("From", [])
        found = [normalise(each.addr_spec) for each in headers[0].addresses] if headers else []
    except Exception:  # an unreadable From: the answer is dropped like any other
        return ""
    return found[0] if len(headers) == 1 and len(found) == 1 else ""
