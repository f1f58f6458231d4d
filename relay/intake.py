"""accept(): the one way in, for SMTP and IMAP alike.

Owns everything decided about an incoming message: parse it, find the pair
and which participant is writing, run the moderation rules, and store the
message with its outcome (forward queued, held, rejected, discarded) in ONE
commit. The caller replies to the client only after accept() returns, so a
250 always means the message is in the database. Nothing about a message is
decided in a source.

accept() is synchronous and touches the database: the daemon runs it in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from secrets import token_hex

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, joinedload

from relay.config import Config
from relay.delivery.bounces import load_bounce_addresses, record_bounce
from relay.delivery.forwarding import hidden_addresses, queue_forward
from relay.delivery.notices import Notice, Notices
from relay.errors import RefusedError
from relay.mail import limits, rawinput, replies
from relay.mail.addresses import BounceAddresses, normalise, pair_address, token_of
from relay.mail.parsing import parse, single_from_address
from relay.mail.replies import Reply
from relay.mail.text import MailView
from relay.outbound.rewrite import first_message_id
from relay.rules.automated import is_automated as is_automated_mail
from relay.rules.base import Action, Hit, RuleContext, decide
from relay.rules.engine import build_rules, run_rules
from relay.rules.identity import strip_forged_results
from relay.safeguarding.concerns import take_concern
from relay.safeguarding.escalation import escalate
from relay.store.db import Store
from relay.store.models import Message, OutboxEntry, Pair, Participant
from relay.store.states import OPEN_PAIR_STATES, MessageStatus, PairStatus, utcnow

log = logging.getLogger(__name__)

ACTIVE_TOKEN_SECONDS = 5.0
ACTIVE_TOKEN_CACHE_SIZE = 10_000

_STATUS = {
    Action.ACCEPT: MessageStatus.QUEUED,
    Action.HOLD: MessageStatus.HELD,
    Action.REJECT: MessageStatus.REJECTED,
    Action.DISCARD: MessageStatus.DISCARDED,
    Action.ESCALATE: MessageStatus.HELD,
}
_REPLY = {
    Action.ACCEPT: replies.OK,
    Action.HOLD: replies.OK,
    Action.REJECT: replies.REJECTED,
    Action.DISCARD: replies.DISCARDED,
    Action.ESCALATE: replies.OK,
}


@dataclass(frozen=True)
class Incoming:
    """A message as a source received it, before anything is decided."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    source: str  # "smtp", "lmtp" or "imap"
    peer: str = ""


# Called inside accept()'s unit of work with the reply and the stored message ids.
CommitHook = Callable[[Session, Reply, tuple[int, ...]], None]


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    message_ids: tuple[int, ...] = ()
    action: Action | None = None  # None: refused before anything was stored
    hits: tuple[Hit, ...] = ()
    notified: bool = False  # notices were queued without a message (mail to concern@)

    @property
    def queued(self) -> bool:
        """Something new waits in the outbox (a forward or a notice)."""
        return self.notified or (self.action is not None and self.action is not Action.DISCARD)


@dataclass
class _Candidate:
    """One pair the message is for, with what the rules found there."""

    pair: Pair
    sender: Participant
    hits: list[Hit]


class Intake:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.domain = config.relay.domain.lower()
        self.rules = build_rules(config.rules)
        self.notices = Notices(config)
        self.concern_address = f"{config.safeguarding.concern_address}@{self.domain}".lower()
        self._bounce_addresses: BounceAddresses | None = None
        self._active_tokens: dict[str, float] = {}  # token -> until when RCPT may skip the query

    def reload(self, config: Config, notices: Notices) -> None:
        """New rules, actions and templates for the next message (SIGHUP)."""
        self.rules = build_rules(config.rules)
        self.notices = notices
        self.config = config
        self.concern_address = f"{config.safeguarding.concern_address}@{self.domain}".lower()

    @property
    def bounce_addresses(self) -> BounceAddresses:
        if self._bounce_addresses is None:
            self._bounce_addresses = load_bounce_addresses(self.store, self.domain)
        return self._bounce_addresses

    # -- RCPT time -----------------------------------------------------------

    def check_recipient(self, address: str) -> Reply:
        """Whether a RCPT TO address is one this relay takes mail for."""
        bare = normalise(address)
        if not bare or bare.rpartition("@")[2] != self.domain:
            return replies.NOT_OUR_DOMAIN
        if self.bounce_addresses.is_bounce_address(bare) or bare == self.concern_address:
            # Forged or not, from anyone: the same answer, so it tells a prober nothing.
            return replies.RECIPIENT_OK
        token = token_of(bare, self.domain)
        if token is None:
            return replies.UNKNOWN_PAIR
        now = time.monotonic()
        if self._active_tokens.get(token, 0.0) > now:
            return replies.RECIPIENT_OK
        with self.store.read_session() as session:
            status = session.scalar(select(Pair.status).where(Pair.token == token))
        if status is None:
            return replies.UNKNOWN_PAIR
        if status not in OPEN_PAIR_STATES:
            return replies.ENDED_PAIR
        if len(self._active_tokens) >= ACTIVE_TOKEN_CACHE_SIZE:
            self._active_tokens.clear()
        # Safe to remember: accept() checks the pair again in its own transaction, so a
        # pair ended meanwhile still refuses the message (550 5.1.1 after DATA).
        self._active_tokens[token] = now + ACTIVE_TOKEN_SECONDS
        return replies.RECIPIENT_OK

    # -- after DATA ----------------------------------------------------------

    def accept(self, incoming: Incoming, in_same_commit: CommitHook | None = None) -> Outcome:
        """Decide and store a message; in_same_commit adds a source's own rows to that commit.

        The IMAP source passes in_same_commit to record the UID it took the message from,
        so the message and the record of having taken it commit together or not at all.
        """
        recipients = list(dict.fromkeys(normalise(r) for r in incoming.recipients))
        bounces = [r for r in recipients if self.bounce_addresses.is_bounce_address(r)]
        to_concern = self.concern_address in recipients
        pairs = [r for r in recipients if r not in bounces and r != self.concern_address]
        concern_noticed = False
        try:
            if len(incoming.raw) > self.config.relay.max_message_size:
                raise RefusedError(replies.TOO_BIG)
            raw = rawinput.normalise(incoming.raw)
            limits.check_headers(raw, self.config.relay)
            message = parse(raw)
            if bounces:
                self._take_bounces(bounces, message)
            if to_concern:
                concern_noticed = self._take_concern(incoming, message, raw)
            if not pairs:
                # A concern gets the answer a stranger's mail to concern@ gets: no oracle.
                return Outcome(reply=replies.DISCARDED, notified=concern_noticed)
            if not incoming.envelope_from or incoming.envelope_from == "<>":
                raise RefusedError(replies.NULL_SENDER)
            from_address = single_from_address(message)
            trusted_id = self.config.rules.trusted_authserv_id
            if trusted_id and strip_forged_results(message, trusted_id):
                log.info("removed Authentication-Results forged upstream as %s", trusted_id)
            view = MailView.from_message(message)
            with self.store.session() as session:
                candidates = [
                    self._candidate(session, view, from_address, recipient) for recipient in pairs
                ]
                # One decision for the whole message: the strictest any pair calls for.
                action = max(decide(c.hits, self.config.rules.actions) for c in candidates)
                ids = [
                    self._store(session, raw, incoming.source, message, candidate, action)
                    for candidate in candidates
                ]
                if in_same_commit is not None:
                    in_same_commit(session, _REPLY[action], tuple(ids))
        except RefusedError as refusal:
            reply = refusal.reply
            fields: dict[str, object] = {
                "source": incoming.source,
                "decision": "refused",
                "smtp": _code(reply),
            }
            log.info("refused: %s", reply.text, extra={"fields": fields})
            return Outcome(reply=reply)
        hits = tuple(hit for candidate in candidates for hit in candidate.hits)
        reply = self._reply(action, hits)
        for message_id, candidate in zip(ids, candidates, strict=True):
            fields = {
                "message": message_id,
                "pair": candidate.pair.token,
                "sender_role": "mentor"
                if candidate.sender.id == candidate.pair.mentor_id
                else "mentee",
                "decision": str(action),
                "rules": sorted({hit.rule for hit in candidate.hits}),
                "smtp": _code(reply),
                "source": incoming.source,
            }
            # The id, decision and rules are fields: the line's text does not repeat them.
            log.info("decided", extra={"fields": fields})
        return Outcome(reply=reply, message_ids=tuple(ids), action=action, hits=hits)

    def _reply(self, action: Action, hits: tuple[Hit, ...]) -> Reply:
        if action is Action.REJECT and any(h.rule == "outside_recipients" for h in hits):
            return replies.OUTSIDE_RECIPIENT
        return _REPLY[action]

    def _take_bounces(self, recipients: list[str], message: EmailMessage) -> None:
        for address in recipients:
            outbox_id = self.bounce_addresses.outbox_id(address)
            if outbox_id is None:
                log.info("dropped mail to a bounce address with a bad signature")
                continue
            with self.store.session() as session:
                record_bounce(session, self.notices, outbox_id, message)

    def _take_concern(self, incoming: Incoming, message: EmailMessage, raw: bytes) -> bool:
        """Mail to concern@: a concern if a participant wrote it, else dropped quietly."""
        try:
            writer = single_from_address(message)
        except RefusedError:
            writer = ""
        sender = "" if not incoming.envelope_from or incoming.envelope_from == "<>" else writer
        return take_concern(self.store, self.config, self.notices, sender, message, raw)

    def _candidate(
        self, session: Session, view: MailView, from_address: str, recipient: str
    ) -> _Candidate:
        pair = self._active_pair(session, recipient)
        sender = self._sender_in_pair(pair, from_address)
        address = pair_address(pair.token, self.domain)
        context = RuleContext(
            pair_address=address,
            relay_domain=self.domain,
            sender_role="mentor" if sender.id == pair.mentor_id else "mentee",
            # A message refused by a rule or a moderator was never passed on: it does
            # not use up one of a new pair's first, watched-over messages.
            messages_from_sender_in_pair=_count(
                session,
                Message.pair_id == pair.id,
                Message.sender_id == sender.id,
                Message.status.notin_(_NOT_PASSED_ON),
            ),
            sender_messages_last_hour=_count(
                session,
                Message.sender_id == sender.id,
                Message.received_at >= utcnow() - timedelta(hours=1),
            ),
            watched=sender.watched or pair.watched,
            paused=pair.status is PairStatus.PAUSED,
            # Their own addresses are replaced by the pair address on the way out.
            # ... and a copy to concern@ is the writer's right (it is never forwarded).
            allowed_addresses=frozenset({address, self.concern_address, *hidden_addresses(pair)}),
            own_loop_id=self.domain,
        )
        return _Candidate(pair, sender, run_rules(self.rules, view, context))

    def _store(
        self,
        session: Session,
        raw: bytes,
        source: str,
        message: EmailMessage,
        candidate: _Candidate,
        action: Action,
    ) -> int:
        pair, sender = candidate.pair, candidate.sender
        partner = pair.partner_of(sender.id)
        stored = Message(
            pair=pair,
            sender=sender,
            recipient=partner,
            status=_STATUS[action],
            raw=raw,
            size=len(raw),
            subject=str(message.get("Subject", ""))[:1000],
            original_message_id=first_message_id(str(message.get("Message-ID", ""))),
            relay_message_id=f"<{token_hex(16)}@{self.domain}>",
            hits=json.dumps([hit.to_json() for hit in candidate.hits]),
            source=source,
        )
        session.add(stored)
        session.flush()
        automated = is_automated_mail(message, self.domain)
        if action is Action.ACCEPT:
            queue_forward(session, self.config, stored, message)
        elif action is Action.HOLD and not automated:
            self._tell_sender_it_is_held(session, stored)
        elif action is Action.REJECT and not automated:
            # Only what refused it: a hold (a new pair, say) is no reason for a refusal.
            actions = self.config.rules.actions
            reasons = [
                hit.reason
                for hit in candidate.hits
                if actions.get(hit.rule, Action.HOLD) >= Action.REJECT
            ]
            self.notices.to_sender(session, Notice.REFUSED, stored, reasons=reasons)
        elif action is Action.ESCALATE:
            # No "held" notice: it could warn someone grooming a child that staff are looking.
            escalate(session, self.config, self.notices, stored, candidate.hits)
        return stored.id

    def _tell_sender_it_is_held(self, session: Session, stored: Message) -> None:
        sender = stored.sender
        since = utcnow() - timedelta(days=1)
        sent_today = _count_held_notices(session, sender.email, since)
        if sent_today >= self.config.moderation.held_notices_per_day:
            return
        self.notices.to_sender(session, Notice.HELD, stored)

    def _active_pair(self, session: Session, recipient: str) -> Pair:
        token = token_of(recipient, self.domain)
        pair = (
            session.scalars(
                select(Pair)
                .where(Pair.token == token)
                .options(
                    joinedload(Pair.mentor).joinedload(Participant.addresses),
                    joinedload(Pair.mentee).joinedload(Participant.addresses),
                )
            )
            .unique()
            .first()
            if token
            else None
        )
        if pair is None:
            raise RefusedError(replies.UNKNOWN_PAIR)
        if pair.status not in OPEN_PAIR_STATES:
            raise RefusedError(replies.ENDED_PAIR)
        return pair

    def _sender_in_pair(self, pair: Pair, from_address: str) -> Participant:
        for participant in (pair.mentor, pair.mentee):
            if any(address.email == from_address for address in participant.addresses):
                return participant
        raise RefusedError(replies.STRANGER)


_NOT_PASSED_ON = (MessageStatus.REJECTED, MessageStatus.DISCARDED)


def _code(reply: Reply) -> str:
    return f"{reply.code} {reply.status}"


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count(Message.id)).where(*conditions)) or 0)


def _count_held_notices(session: Session, recipient: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count(OutboxEntry.id)).where(
                OutboxEntry.notice == Notice.HELD,
                OutboxEntry.recipient == recipient,
                OutboxEntry.created_at >= since,
            )
        )
        or 0
    )
