"""What a decided message becomes in the database, before the group writer stores it.

Owns the step between intake's decision and the commit: one transcript row per
pair the message was for, with its forward (rendered for the partner) or its
notice to the sender (held, refused) as an outbox row, a set-aside row per
pair whose participants the From does not name, and the write itself, run
inside the group writer's transaction: confirm that the pair directory the
decision was made on is still current, insert, apply the held-notice cap, and
hand an escalated message to safeguarding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from secrets import token_hex
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import forward_row, guardian_rows
from relay.delivery.notices import Notice, Notices, held_notice_allowed
from relay.mail.addresses import pair_address
from relay.mail.policy import message_id_text
from relay.mail.replies import Reply
from relay.outbound.rewrite import first_message_id
from relay.rules.base import Action, Hit, reasons_for
from relay.safeguarding.escalation import escalate
from relay.store.directory import PairDirectory, PairEntry, Person
from relay.store.messages import insert_message, insert_outbox
from relay.store.models import Message
from relay.store.set_aside import insert_set_aside
from relay.store.states import MessageStatus, utcnow

# Called inside accept()'s unit of work with the reply and the stored message ids.
CommitHook = Callable[[Session, Reply, tuple[int, ...]], None]
STATUS = {
    Action.ACCEPT: MessageStatus.QUEUED,
    Action.HOLD: MessageStatus.HELD,
    Action.REJECT: MessageStatus.REJECTED,
    Action.DISCARD: MessageStatus.DISCARDED,
    Action.ESCALATE: MessageStatus.HELD,
}


@dataclass
class Candidate:
    """One pair the message is for, with what the rules found there."""

    pair: PairEntry
    sender: Person
    hits: list[Hit]
    directory_version: int
    thread: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    unverified: bool = False  # the From names a participant but is not authenticated


@dataclass(frozen=True)
class Aside:
    """A pair the message is for whose participants its From does not name: kept, set aside."""

    pair: PairEntry
    directory_version: int
    row: dict[str, Any]  # relay.store.set_aside.set_aside_row


@dataclass
class Rows:
    """What one candidate becomes in the database; written by the group writer."""

    message: dict[str, Any]
    outbox: dict[str, Any] | None = None
    held_notice_to: str = ""  # outbox is a held notice to this address: only if the cap allows
    escalate: list[Hit] | None = None  # escalated: pause the pair, open a concern, tell leads
    guardian_copy_of: EmailMessage | None = None  # the forward, when guardians get copies


@dataclass
class Prepared:
    config: Config
    notices: Notices
    directory: PairDirectory
    candidates: list[Candidate]
    action: Action
    reply: Reply
    rows: list[Rows] = field(default_factory=list)
    aside: list[Aside] = field(default_factory=list)

    def write(self, connection: Connection) -> tuple[int, ...]:
        """Runs in the group writer's transaction: nothing here may be slow."""
        versions = [c.directory_version for c in self.candidates]
        for version in {*versions, *(each.directory_version for each in self.aside)}:
            self.directory.confirm(connection, version)
        for each in self.aside:
            insert_set_aside(connection, each.row, STATUS[self.action])
        ids = []
        for rows in self.rows:
            # A plain forward (or a hold without a notice) is written with the batch's
            # others at its end; what reads its rows in this transaction is written now.
            plain = not rows.held_notice_to and rows.escalate is None
            plain = plain and rows.guardian_copy_of is None
            message_id = insert_message(connection, rows.message, deferred=plain)
            ids.append(message_id)
            outbox = rows.outbox
            if rows.held_notice_to and not held_notice_allowed(
                connection, self.config, rows.held_notice_to
            ):
                outbox = None
            if outbox is not None:
                insert_outbox(connection, {**outbox, "message_id": message_id}, deferred=plain)
            if rows.escalate is not None:
                self._escalate(connection, message_id, rows.escalate)
            if rows.guardian_copy_of is not None:
                self._guardian_copies(connection, message_id, rows.guardian_copy_of)
        return tuple(ids)

    def work(self, hook: CommitHook | None) -> Callable[[Connection], tuple[int, ...]]:
        """The group writer's work: write(), and the source's hook if it has one."""
        if hook is None:
            return self.write

        def write_with_hook(connection: Connection) -> tuple[int, ...]:
            ids = self.write(connection)
            # The source's own rows (IMAP's UID record) or its veto (the SMTP deadline's
            # guard) join the same group commit, through an ORM session on its connection.
            with Session(bind=connection) as session:
                hook(session, self.reply, ids)
                session.flush()
            return ids

        return write_with_hook

    def _guardian_copies(
        self, connection: Connection, message_id: int, forward: EmailMessage
    ) -> None:
        # Only with [safeguarding] guardian_copies: who is a minor lives with safeguarding.
        with Session(bind=connection) as session:
            stored = session.get(Message, message_id)
            assert stored is not None
            for row in guardian_rows(self.config, stored, forward):
                insert_outbox(connection, row)

    def _escalate(self, connection: Connection, message_id: int, hits: list[Hit]) -> None:
        # Rare, and safeguarding's own ORM code: run it on the writer's connection.
        with Session(bind=connection) as session:
            stored = session.get(Message, message_id)
            assert stored is not None
            escalate(session, self.config, self.notices, stored, hits)
            session.flush()


def rows_for(
    config: Config,
    notices: Notices,
    raw: bytes,
    source: str,
    message: EmailMessage,
    candidate: Candidate,
    action: Action,
    automated: bool,
) -> Rows:
    """What one pair's copy of a decided message becomes: its row, and its forward or notice."""
    domain = config.relay.domain.lower()
    pair, sender = candidate.pair, candidate.sender
    partner = pair.partner_of(sender)
    subject = str(message.get("Subject", ""))[:1000]
    relay_message_id = f"<{token_hex(16)}@{domain}>"
    rows = Rows(
        message={
            "pair_id": pair.id,
            "sender_id": sender.id,
            "recipient_id": partner.id,
            "status": STATUS[action],
            "raw": raw,
            "size": len(raw),
            "subject": subject,
            "original_message_id": first_message_id(message_id_text(message)),
            "relay_message_id": relay_message_id,
            "hits": json.dumps([hit.to_json() for hit in candidate.hits]),
            "source": source,
            "received_at": utcnow(),
            "unverified": candidate.unverified,
        }
    )
    if action is Action.ACCEPT:
        rows.outbox, outbound = forward_row(
            config,
            message,
            token=pair.token,
            sender_name=sender.display_name,
            recipient_name=partner.display_name,
            recipient_address=partner.email,
            relay_message_id=relay_message_id,
            thread=candidate.thread,
            hidden=pair.hidden_addresses,
        )
        if config.safeguarding.guardian_copies:
            rows.guardian_copy_of = outbound
    elif action is Action.ESCALATE:
        # No "held" notice: it could warn someone grooming a child that staff are looking.
        rows.escalate = candidate.hits
    elif action in (Action.HOLD, Action.REJECT) and not (automated or candidate.unverified):
        # Nobody but moderators hears of mail whose From is not authenticated: a
        # notice would go to the participant it claims to be from.
        about = {
            "subject": subject or "(no subject)",
            "partner_name": partner.display_name,
            "pair_address": pair_address(pair.token, domain),
        }
        if action is Action.HOLD:
            rows.outbox = notices.outbox_row(Notice.HELD, sender, **about)
            rows.held_notice_to = sender.email
        else:
            reasons = reasons_for(Action.REJECT, candidate.hits, config.rules.actions)
            rows.outbox = notices.outbox_row(Notice.REFUSED, sender, **about, reasons=reasons)
    return rows
