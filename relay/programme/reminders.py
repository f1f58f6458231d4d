"""Opting out of the programme's reminders (prompts and nudges), and back in.

Owns the List-Unsubscribe address of each participant,
``unsubscribe-<participant id>-<hmac>@<domain>`` (the signed-address scheme
of the bounce and check-in addresses). Mail to it switches that
participant's reminders off; RFC 8058 does not ask who sends it, and the
signature means only someone who received the participant's mail can. A
forged or unknown address gets the same 250 and changes nothing. Check-ins,
closings and notices still go out: they are how the programme knows a pair
is all right. A coordinator switches reminders back on with
`relay participant reminders EMAIL on`.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from relay.mail.addresses import SignedAddresses
from relay.store.models import Participant

log = logging.getLogger(__name__)


def list_unsubscribe(addresses: SignedAddresses, participant_id: int) -> str:
    """The List-Unsubscribe header value (RFC 2369 mailto)."""
    return f"<mailto:{addresses.address(participant_id)}?subject=unsubscribe>"


def opt_out(session: Session, addresses: SignedAddresses, recipient: str) -> bool:
    participant_id = addresses.item_id(recipient)
    participant = session.get(Participant, participant_id) if participant_id else None
    if participant is None:
        log.info("dropped mail to an unsubscribe address that is forged or unknown")
        return False
    participant.reminders_off = True
    log.info("participant %s switched reminders off", participant.id)
    return True
