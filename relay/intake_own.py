"""Mail for the relay's own addresses, which intake takes but never relays.

Owns the routing of recipients that are not pair addresses: signed bounce
addresses (relay.delivery.bounces), concern@ (relay.safeguarding.concerns),
check-in answers and unsubscribes (relay.programme.inbound), replies to match
offers (relay.offers.inbound), postmaster@, abuse@ and the notices' address
(relay.delivery.mailboxes). Such mail is
rare, so each is taken in its own commit rather than through the group
writer; what is left are the pair addresses intake decides on.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

from relay.config import Config
from relay.delivery import mailboxes
from relay.delivery.bounces import take_bounces
from relay.delivery.notices import Notices
from relay.mail.addresses import BounceAddresses
from relay.mail.authentication import Authenticator
from relay.offers import inbound as offer_replies
from relay.offers.flow import Desk
from relay.offers.inbound import Envelope
from relay.programme import inbound
from relay.rules.base import Action, Rule
from relay.safeguarding.concerns import take_concern_from
from relay.store.db import Store


@dataclass(frozen=True)
class Recipients:
    """A message's (normalised, distinct) recipients by what the relay does with them."""

    pairs: list[str]
    bounces: list[str]
    to_concern: bool
    answers: list[str]  # check-in answers, unsubscribes
    offers: list[str]  # choices and yes/no to match offers
    own: list[str]  # postmaster@, abuse@, the notices' address

    @classmethod
    def sort(
        cls, recipients: list[str], signed: BounceAddresses, concern: str, config: Config
    ) -> Recipients:
        bounces = [r for r in recipients if signed.is_bounce_address(r)]
        own = [r for r in recipients if mailboxes.mailbox_of(r, config)]
        answers = [r for r in recipients if inbound.is_programme_address(signed, r)]
        offers = [r for r in recipients if signed.offer_addresses().is_ours(r)]
        others = {*bounces, *own, *answers, *offers, concern}
        pairs = [r for r in recipients if r not in others]
        return cls(pairs, bounces, concern in recipients, answers, offers, own)

    @property
    def any_own(self) -> bool:
        return bool(self.bounces or self.to_concern or self.answers or self.offers or self.own)


@dataclass(frozen=True)
class Taken:
    noticed: bool = False  # notices were queued (a concern, answers to offer replies)
    own_action: Action | None = None  # mail to own mailboxes queued something: ACCEPT


def take_own_mail(
    store: Store,
    config: Config,
    notices: Notices,
    signed: BounceAddresses,
    rules: list[Rule],
    authenticator: Authenticator,
    recipients: Recipients,
    message: EmailMessage,
    raw: bytes,
    incoming: Envelope,
) -> Taken:
    envelope_from, peer = incoming.envelope_from, incoming.peer
    if recipients.bounces:
        take_bounces(store, notices, signed, recipients.bounces, message, envelope_from)
    noticed = False
    if recipients.to_concern:
        noticed = take_concern_from(store, config, notices, envelope_from, message, raw)
    if recipients.answers:
        inbound.take(store, signed, rules, recipients.answers, message)
    if recipients.offers:
        desk = Desk(config, notices, signed.offer_addresses())
        noticed |= offer_replies.take(
            store, desk, authenticator, recipients.offers, raw, message, incoming
        )
    own_action = None
    if recipients.own:
        with store.session() as session:
            result = mailboxes.take(
                session, config, notices, recipients.own, message, envelope_from, peer
            )
        own_action = Action.ACCEPT if result.queued else None
    return Taken(noticed, own_action)
