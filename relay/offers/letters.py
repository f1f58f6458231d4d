"""The mail of the offer loop, each from the signed address its reply must go to.

Owns rendering and queueing: the mentee's offer (the candidates' profiles: display
name, field, interests, goals, languages, why they fit; never an address or an
organisation, which the profiles stored for offers do not even hold), the mentor's
invitation (the mentee's profile), "please answer with a number / yes or no",
"this offer has moved on", the moderators' "no choice left", and what the
steps' callers share (Desk). Replies to the first two reach relay.offers.inbound;
the answers, reminders and cancellations are sent from the same address, so a
reply to them lands in the same place. A round's letters are built in a batch
(outbox_row with BATCH_POLICY) and inserted with Core.
"""

from __future__ import annotations

import email.policy
import json
from dataclasses import dataclass
from datetime import datetime
from email.policy import EmailPolicy
from typing import Any

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Addressee, Moderator, Notice, Notices
from relay.mail.addresses import SignedAddresses, display_address
from relay.mail.policy import POLICY
from relay.outbound.signing import outbound_bytes
from relay.store.models import OutboxEntry
from relay.store.states import OutboxKind


@dataclass(frozen=True)
class Desk:
    """What the offer steps need: settings, templates and the signed reply addresses."""

    config: Config
    notices: Notices
    addresses: SignedAddresses

    def queue(
        self,
        session: Session,
        notice: Notice,
        recipient: Addressee,
        from_address: str,
        **context: Any,
    ) -> None:
        """Render a notice and queue it from a signed offer address."""
        queue_from(session, self.config, self.notices, notice, recipient, from_address, **context)


def queue_from(
    session: Session,
    config: Config,
    notices: Notices,
    notice: Notice,
    recipient: Addressee,
    from_address: str,
    in_reply_to: str = "",
    **context: Any,
) -> None:
    """Render a notice and queue it with the given (signed) From."""
    row = outbox_row(config, notices, notice, recipient, from_address, in_reply_to, **context)
    session.add(OutboxEntry(**row))


@dataclass(frozen=True)
class Recipient:
    """Whom a letter is for, when there is no Participant row to hand (a round's batch)."""

    display_name: str
    email: str


#: For a batch of letters: relay.mail.policy's caching policy (the same bytes as
#: email.policy.default; a round's letters share most headers, and parsing a header
#: into its object was more than half the cost of a letter).
BATCH_POLICY = POLICY


def outbox_row(
    config: Config,
    notices: Notices,
    notice: Notice,
    recipient: Addressee,
    from_address: str,
    in_reply_to: str = "",
    *,
    policy: EmailPolicy[Any] = email.policy.default,
    **context: Any,
) -> dict[str, Any]:
    """A notice with the given (signed) From, as outbox column values (for a Core insert).

    A batch passes BATCH_POLICY (the same bytes, built several times faster).
    """
    message = notices.render(notice, recipient, policy=policy, **context)
    message.replace_header("From", display_address(config.relay.programme_name, from_address))
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    return {
        "kind": OutboxKind.NOTICE,
        "notice": notice.value,
        "recipient": recipient.email,
        "content": outbound_bytes(config, message),
    }


def when(moment: datetime) -> str:
    return moment.strftime("%A %d %B %Y, %H:%M")


def shown_profile(stored: str, rank: int = 0) -> dict[str, Any]:
    """What a letter may show of a stored profile (it holds nothing else)."""
    data = json.loads(stored or "{}")
    shown = {
        key: data.get(key, default)
        for key, default in (
            ("name", ""),
            ("field", ""),
            ("interests", []),
            ("goals", []),
            ("languages", []),
            ("reasons", []),
        )
    }
    return shown | {"rank": rank}


def no_choice_left(
    session: Session,
    config: Config,
    notices: Notices,
    *,
    offer_id: int,
    mentee_name: str,
    mentee_email: str,
    reason: str,
    state: str,
    choices: list[dict[str, Any]],
) -> None:
    """Tell the moderators (the programme's coordinators) that a mentee needs them."""
    for address in config.moderation.moderators:
        notices.queue(
            session,
            Notice.OFFER_NO_CHOICE_LEFT,
            Moderator("Coordinator", address),
            offer_id=offer_id,
            mentee_name=mentee_name,
            mentee_email=mentee_email,
            reason=reason,
            state=state,
            choices=choices,
        )


def unclear(
    session: Session,
    config: Config,
    notices: Notices,
    recipient: Addressee,
    from_address: str,
    subject: str,
    in_reply_to: str,
    expected: str,
    example: str,
) -> None:
    queue_from(
        session,
        config,
        notices,
        Notice.OFFER_UNCLEAR,
        recipient,
        from_address,
        in_reply_to,
        subject=subject,
        expected=expected,
        example=example,
    )


def moved_on(
    session: Session,
    config: Config,
    notices: Notices,
    recipient: Addressee,
    from_address: str,
    subject: str,
    in_reply_to: str,
    why: str,
) -> None:
    queue_from(
        session,
        config,
        notices,
        Notice.OFFER_MOVED_ON,
        recipient,
        from_address,
        in_reply_to,
        subject=subject,
        why=why,
    )
