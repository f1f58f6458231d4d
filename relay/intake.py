"""accept(): the one way in, for SMTP and IMAP alike.

Owns everything decided about an incoming message: parse it, find the pair
and which participant is writing, run the rules, and store the message and
its outcome (forward queued, held, refused) in ONE commit. The caller
replies to the client only after accept() returns, so a 250 always means
the message is in the database. Nothing about a message is decided in a
source.

accept() is synchronous and touches the database: the daemon runs it in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from secrets import token_hex

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relay import replies
from relay.addresses import normalise, pair_address, token_of
from relay.config import Config
from relay.db import Store
from relay.errors import RefusedError
from relay.models import (
    Message,
    MessageStatus,
    OutboxEntry,
    OutboxKind,
    Pair,
    PairStatus,
    Participant,
    ParticipantAddress,
)
from relay.replies import Reply
from relay.rewrite import RewritePlan, as_outbound_bytes, first_message_id, message_ids, rewrite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """A message as a source received it, before anything is decided."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    source: str  # "smtp" or "imap"
    peer: str = ""


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    message_ids: tuple[int, ...] = ()
    queued: bool = False  # something new is waiting in the outbox
    decisions: tuple[str, ...] = field(default=())


class Intake:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.domain = config.relay.domain.lower()

    # -- RCPT time -----------------------------------------------------------

    def check_recipient(self, address: str) -> Reply:
        """Whether a RCPT TO address is one this relay takes mail for."""
        bare = normalise(address)
        if not bare or bare.rpartition("@")[2] != self.domain:
            return replies.NOT_OUR_DOMAIN
        token = token_of(bare, self.domain)
        if token is None:
            return replies.UNKNOWN_PAIR
        with self.store.session() as session:
            status = session.scalar(select(Pair.status).where(Pair.token == token))
        if status is None:
            return replies.UNKNOWN_PAIR
        if status is not PairStatus.ACTIVE:
            return replies.ENDED_PAIR
        return replies.RECIPIENT_OK

    # -- after DATA ----------------------------------------------------------

    def accept(self, incoming: Incoming) -> Outcome:
        try:
            if len(incoming.raw) > self.config.relay.max_message_size:
                raise RefusedError(replies.TOO_BIG)
            if not incoming.envelope_from or incoming.envelope_from == "<>":
                raise RefusedError(replies.NULL_SENDER)
            message = parse(incoming.raw)
            from_address = single_from_address(message)
            with self.store.session() as session:
                stored = [
                    self._store_for_pair(session, incoming, message, from_address, recipient)
                    for recipient in incoming.recipients
                ]
        except RefusedError as refusal:
            log.info("refused %s mail: %s", incoming.source, refusal.reply)
            return Outcome(reply=refusal.reply)
        queued = any(status is MessageStatus.QUEUED for _, status in stored)
        return Outcome(
            reply=replies.OK,
            message_ids=tuple(message_id for message_id, _ in stored),
            queued=queued,
            decisions=tuple(status.value for _, status in stored),
        )

    def _store_for_pair(
        self,
        session: Session,
        incoming: Incoming,
        message: EmailMessage,
        from_address: str,
        recipient: str,
    ) -> tuple[int, MessageStatus]:
        pair = self._active_pair(session, recipient)
        sender = self._sender_in_pair(session, pair, from_address)
        partner = pair.partner_of(sender.id)
        original_id = first_message_id(str(message.get("Message-ID", "")))
        stored = Message(
            pair=pair,
            sender_id=sender.id,
            recipient_id=partner.id,
            status=MessageStatus.QUEUED,
            raw=incoming.raw,
            size=len(incoming.raw),
            subject=str(message.get("Subject", ""))[:1000],
            original_message_id=original_id,
            relay_message_id=f"<{token_hex(16)}@{self.domain}>",
            source=incoming.source,
        )
        session.add(stored)
        session.flush()
        self._queue_forward(session, stored, message, pair, sender, partner)
        return stored.id, stored.status

    def _queue_forward(
        self,
        session: Session,
        stored: Message,
        message: EmailMessage,
        pair: Pair,
        sender: Participant,
        partner: Participant,
    ) -> None:
        in_reply_to, references = self._map_thread(session, pair, sender, message)
        plan = RewritePlan(
            programme_name=self.config.relay.programme_name,
            pair_address=pair_address(pair.token, self.domain),
            sender_display_name=sender.display_name,
            recipient_display_name=partner.display_name,
            recipient_address=partner.email,
            relay_message_id=stored.relay_message_id,
            in_reply_to=in_reply_to,
            references=references,
            hidden_addresses=hidden_addresses(pair),
            loop_marker=self.domain,
        )
        outbound = as_outbound_bytes(rewrite(message, plan))
        session.add(
            OutboxEntry(
                kind=OutboxKind.FORWARD,
                message_id=stored.id,
                recipient=partner.email,
                content=outbound,
            )
        )

    def _active_pair(self, session: Session, recipient: str) -> Pair:
        token = token_of(recipient, self.domain)
        pair = session.scalar(select(Pair).where(Pair.token == token)) if token else None
        if pair is None:
            raise RefusedError(replies.UNKNOWN_PAIR)
        if pair.status is not PairStatus.ACTIVE:
            raise RefusedError(replies.ENDED_PAIR)
        return pair

    def _sender_in_pair(self, session: Session, pair: Pair, from_address: str) -> Participant:
        owner_id = session.scalar(
            select(ParticipantAddress.participant_id).where(
                ParticipantAddress.email == from_address
            )
        )
        if owner_id == pair.mentor_id:
            return pair.mentor
        if owner_id == pair.mentee_id:
            return pair.mentee
        raise RefusedError(replies.STRANGER)

    def _map_thread(
        self, session: Session, pair: Pair, sender: Participant, message: EmailMessage
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Translate the ids a sender's reply points at into the ids the partner knows.

        The sender knows the relay ids of what they received and the original
        ids of what they sent; the partner knows the reverse. An id the relay
        has never seen (someone else's thread, a client's own hostname) is
        dropped rather than passed on.
        """
        in_reply_to = message_ids(str(message.get("In-Reply-To", "")))
        references = message_ids(str(message.get("References", "")))
        wanted = set(in_reply_to) | set(references)
        if not wanted:
            return (), ()
        known = session.scalars(
            select(Message).where(
                Message.pair_id == pair.id,
                or_(
                    Message.relay_message_id.in_(wanted),
                    Message.original_message_id.in_(wanted),
                ),
            )
        ).all()
        translation: dict[str, str] = {}
        for row in known:
            if row.recipient_id == sender.id and row.relay_message_id in wanted:
                if row.original_message_id:
                    translation[row.relay_message_id] = row.original_message_id
            elif row.sender_id == sender.id and row.original_message_id in wanted:
                translation[row.original_message_id] = row.relay_message_id

        def mapped(ids: list[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(translation[i] for i in ids if i in translation))

        return mapped(in_reply_to), mapped(references)


def parse(raw: bytes) -> EmailMessage:
    try:
        message = message_from_bytes(raw, policy=policy.default)
    except Exception:  # the parser is lenient; anything it still rejects is the input's fault
        log.warning("unparseable message", exc_info=True)
        raise RefusedError(replies.MALFORMED) from None
    assert isinstance(message, EmailMessage)
    return message


def single_from_address(message: EmailMessage) -> str:
    """The one address in the one From header, or a refusal."""
    try:
        headers = message.get_all("From", [])
        addresses = [normalise(each.addr_spec) for each in headers[0].addresses] if headers else []
    except Exception:  # a From the header registry cannot read is the input's fault
        log.warning("unreadable From header", exc_info=True)
        raise RefusedError(replies.BAD_FROM) from None
    if len(headers) != 1 or len(addresses) != 1 or not addresses[0]:
        raise RefusedError(replies.BAD_FROM)
    return addresses[0]


def hidden_addresses(pair: Pair) -> tuple[str, ...]:
    """Every registered address of both participants: none may reach the other side."""
    return tuple(
        address.email
        for participant in (pair.mentor, pair.mentee)
        for address in participant.addresses
    )
