"""Putting a received message's forward in the outbox.

Owns the step between "this message may go through" and the delivery
worker: translate the thread ids the sender knows into the ones the partner
knows, build the rewrite plan, render the outbound bytes, and add the outbox
row, all inside the caller's transaction. Intake uses it for accepted mail,
moderation for approved mail; the rendering itself is rewrite's pure job.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notice
from relay.mail.addresses import pair_address
from relay.outbound.footer import add_footer
from relay.outbound.rewrite import RewritePlan, message_ids, rewrite
from relay.outbound.signing import outbound_bytes
from relay.programme.mail import is_programme_id
from relay.safeguarding.guardian import guardian_copy, guardians_of
from relay.store.models import Message, OutboxEntry, Pair
from relay.store.states import OutboxKind


class KnownMessage(Protocol):
    """A stored message as thread translation needs it (an ORM row or a Core row)."""

    @property
    def sender_id(self) -> int: ...

    @property
    def recipient_id(self) -> int: ...

    @property
    def relay_message_id(self) -> str: ...

    @property
    def original_message_id(self) -> str | None: ...


def outbound_message(
    session: Session, config: Config, stored: Message, original: EmailMessage
) -> EmailMessage:
    """The message as the partner will receive it."""
    pair = stored.pair
    in_reply_to, references = map_thread(session, pair, stored.sender_id, original)
    plan = RewritePlan(
        programme_name=config.relay.programme_name,
        pair_address=pair_address(pair.token, config.relay.domain),
        sender_display_name=stored.sender.display_name,
        recipient_display_name=stored.recipient.display_name,
        recipient_address=stored.recipient.email,
        relay_message_id=stored.relay_message_id,
        in_reply_to=in_reply_to,
        references=references,
        hidden_addresses=hidden_addresses(pair),
        loop_marker=config.relay.domain,
        strip_remote_content=config.rules.remote_content == "strip",
    )
    outbound = rewrite(original, plan)
    add_footer(outbound, config.safeguarding.footer)
    return outbound


def queue_forward(
    session: Session, config: Config, stored: Message, original: EmailMessage
) -> OutboxEntry:
    outbound = outbound_message(session, config, stored, original)
    entry = OutboxEntry(
        kind=OutboxKind.FORWARD,
        message_id=stored.id,
        recipient=stored.recipient.email,
        content=outbound_bytes(config, outbound),
    )
    session.add(entry)
    for row in guardian_rows(config, stored, outbound):
        session.add(OutboxEntry(**row))
    return entry


def guardian_rows(
    config: Config, stored: Message, outbound: EmailMessage
) -> list[dict[str, object]]:
    """A copy of the forward for each minor's guardian, when the programme asks for it."""
    if not config.safeguarding.guardian_copies:
        return []
    return [
        {
            "kind": OutboxKind.NOTICE,
            "notice": Notice.GUARDIAN_COPY,
            "message_id": stored.id,
            "recipient": guardian,
            "content": outbound_bytes(config, guardian_copy(config, outbound, minor, guardian)),
        }
        for minor, guardian in guardians_of(stored)
    ]


def forward_row(
    config: Config,
    original: EmailMessage,
    *,
    token: str,
    sender_name: str,
    recipient_name: str,
    recipient_address: str,
    relay_message_id: str,
    thread: tuple[tuple[str, ...], tuple[str, ...]],
    hidden: tuple[str, ...],
) -> tuple[dict[str, object], EmailMessage]:
    """A forward as outbox column values for a Core insert (message_id aside): intake's path.

    Also returns the outbound message itself, for guardian copies.
    """
    plan = RewritePlan(
        programme_name=config.relay.programme_name,
        pair_address=pair_address(token, config.relay.domain),
        sender_display_name=sender_name,
        recipient_display_name=recipient_name,
        recipient_address=recipient_address,
        relay_message_id=relay_message_id,
        in_reply_to=thread[0],
        references=thread[1],
        hidden_addresses=hidden,
        loop_marker=config.relay.domain,
        strip_remote_content=config.rules.remote_content == "strip",
    )
    outbound = rewrite(original, plan)
    add_footer(outbound, config.safeguarding.footer)
    row: dict[str, object] = {
        "kind": OutboxKind.FORWARD,
        "recipient": recipient_address,
        "content": outbound_bytes(config, outbound),
    }
    return row, outbound


def map_thread(
    session: Session, pair: Pair, sender_id: int, message: EmailMessage
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Translate the ids a sender's reply points at into the ids the partner knows."""
    wanted = thread_ids(message)
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
    return translate_thread(known, sender_id, pair.token, message)


def thread_ids(message: EmailMessage) -> set[str]:
    """Every id the message's In-Reply-To and References point at."""
    in_reply_to = message_ids(str(message.get("In-Reply-To", "")))
    references = message_ids(str(message.get("References", "")))
    return set(in_reply_to) | set(references)


def translate_thread(
    known: Sequence[KnownMessage], sender_id: int, token: str, message: EmailMessage
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sender knows the relay ids of what they received and the original
    ids of what they sent; the partner knows the reverse. An id the relay
    has never seen (someone else's thread, a client's own hostname) is
    dropped rather than passed on.
    """
    in_reply_to = message_ids(str(message.get("In-Reply-To", "")))
    references = message_ids(str(message.get("References", "")))
    wanted = set(in_reply_to) | set(references)
    translation: dict[str, str] = {}
    for row in known:
        if row.recipient_id == sender_id and row.relay_message_id in wanted:
            if row.original_message_id:
                translation[row.relay_message_id] = row.original_message_id
        elif row.sender_id == sender_id and row.original_message_id in wanted:
            translation[row.original_message_id] = row.relay_message_id

    for wanted_id in wanted:
        # Programme mail (prompts) went to both with the same id: it passes unchanged.
        if is_programme_id(wanted_id, token):
            translation[wanted_id] = wanted_id

    def mapped(ids: list[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(translation[i] for i in ids if i in translation))

    return mapped(in_reply_to), mapped(references)


def hidden_addresses(pair: Pair) -> tuple[str, ...]:
    """Every registered address of both participants: none may reach the other side."""
    return tuple(
        address.email
        for participant in (pair.mentor, pair.mentee)
        for address in participant.addresses
    )
