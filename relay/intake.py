"""accept(): the one way in, for SMTP and IMAP alike.

Owns everything decided about an incoming message: parse it, find the pair
and which participant is writing, run the moderation rules, and store the
message with its outcome (forward queued, held, rejected, discarded) in ONE
commit. The caller replies to the client only after accept() returns, so a
250 always means the message is in the database. Nothing about a message is
decided in a source.

A From naming a participant is believed only when authenticated
(relay.mail.authentication); otherwise it is taken (250) and held for
moderators, nobody else told, and a From naming no participant is taken the
same way and set aside: no address oracle (relay.rules.senders). Mode "off"
believes From as written. postmaster@, abuse@ and the notices' address:
relay.delivery.mailboxes; bounce addresses: relay.delivery.bounces.

accept() is synchronous and touches the database and DNS: the daemon runs it
in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from secrets import token_hex

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from relay import decision_log
from relay.config import Config
from relay.delivery import mailboxes
from relay.delivery.bounces import load_bounce_addresses, take_bounces
from relay.delivery.forwarding import queue_forward
from relay.delivery.notices import Notice, Notices
from relay.errors import RefusedError
from relay.mail import limits, rawinput, replies
from relay.mail.addresses import BounceAddresses, normalise, pair_address, token_of
from relay.mail.authentication import Authenticator, AuthResult
from relay.mail.reading import parse, single_from_address
from relay.mail.replies import Reply
from relay.mail.text import MailView
from relay.offers import inbound as offer_replies
from relay.offers.flow import Desk
from relay.outbound.rewrite import first_message_id
from relay.programme import inbound
from relay.rules.automated import is_automated as is_automated_mail
from relay.rules.base import Action, Hit, RuleContext, reasons_for
from relay.rules.engine import build_rules, run_rules
from relay.rules.identity import strip_forged_results
from relay.rules.senders import PairFindings, decide_message, reply_for
from relay.safeguarding.concerns import take_concern_from
from relay.safeguarding.escalation import escalate
from relay.store import counters, registry
from relay.store.db import Store
from relay.store.models import Message, Pair, Participant
from relay.store.set_aside import set_aside
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


@dataclass(frozen=True)
class Incoming:
    """A message as a source received it, before anything is decided."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    source: str  # "smtp", "lmtp" or "imap"
    peer: str = ""  # the client's IP address (SPF), when the source knows it
    helo: str = ""  # the name the client gave in HELO/EHLO


# Called inside accept()'s unit of work with the reply and the stored message ids.
CommitHook = Callable[[Session, Reply, tuple[int, ...]], None]


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    message_ids: tuple[int, ...] = ()
    action: Action | None = None  # None: refused before anything was stored
    hits: tuple[Hit, ...] = ()
    notified: bool = False  # notices queued without a message (concern@, offer replies)

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
    unverified: bool = False  # the From names a participant but is not authenticated


class Intake:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.domain = config.relay.domain.lower()
        self.rules = build_rules(config.rules)
        self.notices = Notices(config)
        self.concern_address = f"{config.safeguarding.concern_address}@{self.domain}".lower()
        self.authenticator = Authenticator.configured(config.authentication_mode, config.rules)
        self._bounce_addresses: BounceAddresses | None = None
        self._active_tokens: dict[str, float] = {}  # token -> until when RCPT may skip the query

    def reload(self, config: Config, notices: Notices) -> None:
        """New rules, actions and templates for the next message (SIGHUP)."""
        self.rules = build_rules(config.rules)
        self.notices = notices
        self.authenticator = Authenticator.configured(config.authentication_mode, config.rules)
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
        signed = self.bounce_addresses
        if (
            signed.is_bounce_address(bare)
            or bare == self.concern_address
            or inbound.is_programme_address(signed, bare)
            or signed.offer_addresses().is_ours(bare)
        ):
            # Forged or not, from anyone: the same answer, so it tells a prober nothing.
            return replies.RECIPIENT_OK
        if mailboxes.mailbox_of(bare, self.config):
            return replies.RECIPIENT_OK
        token = token_of(bare, self.domain)
        if token is None:
            return replies.UNKNOWN_PAIR
        now = time.monotonic()
        if self._active_tokens.get(token, 0.0) > now:
            return replies.RECIPIENT_OK
        with self.store.read_session() as session:
            status = session.scalar(select(Pair.status).where(Pair.token == token))
        if status not in OPEN_PAIR_STATES:  # ended or never was: one answer, no oracle
            return replies.UNKNOWN_PAIR
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
        own = [r for r in recipients if mailboxes.mailbox_of(r, self.config)]
        answers = [r for r in recipients if inbound.is_programme_address(self.bounce_addresses, r)]
        offers = [r for r in recipients if self.bounce_addresses.offer_addresses().is_ours(r)]
        others = {*bounces, *own, *answers, *offers, self.concern_address}
        pairs = [r for r in recipients if r not in others]
        noticed = False
        try:
            if len(incoming.raw) > self.config.relay.max_message_size:
                raise RefusedError(replies.TOO_BIG)
            raw = rawinput.normalise(incoming.raw)
            limits.check_headers(raw, self.config.relay)
            message = parse(raw)
            if bounces:
                take_bounces(
                    self.store,
                    self.notices,
                    self.bounce_addresses,
                    bounces,
                    message,
                    incoming.envelope_from,
                )
            if to_concern:
                noticed = take_concern_from(
                    self.store, self.config, self.notices, incoming.envelope_from, message, raw
                )
            if answers:  # check-in answers, unsubscribes: never relayed
                inbound.take(self.store, self.bounce_addresses, self.rules, answers, message)
            if offers:  # choices and yes/no to match offers: never relayed
                desk = Desk(self.config, self.notices, self.bounce_addresses.offer_addresses())
                noticed |= offer_replies.take(
                    self.store, desk, self.authenticator, offers, raw, message, incoming
                )
            if own:
                with self.store.session() as session:
                    taken = mailboxes.take(
                        session,
                        self.config,
                        self.notices,
                        own,
                        message,
                        incoming.envelope_from,
                        incoming.peer,
                    )
                if not pairs:
                    queued = Action.ACCEPT if taken.queued else None
                    return Outcome(replies.OK, action=queued, notified=noticed)
            if not pairs:
                # A concern gets the answer a stranger's mail to concern@ gets: no oracle.
                return Outcome(reply=replies.DISCARDED, notified=noticed)
            if not incoming.envelope_from or incoming.envelope_from == "<>":
                raise RefusedError(replies.NULL_SENDER)
            from_address = single_from_address(message)
            trusted_id = self.config.rules.trusted_authserv_id
            if trusted_id and strip_forged_results(message, trusted_id):
                log.info("removed Authentication-Results forged upstream as %s", trusted_id)
            verdict = self.authenticator.check(
                raw, message, from_address, incoming.envelope_from, incoming.helo, incoming.peer
            )
            view = MailView.from_message(message)
            with self.store.session() as session:
                candidates: list[_Candidate] = []
                aside: list[Pair] = []
                for recipient in pairs:
                    pair = self._active_pair(session, recipient)
                    sender = registry.participant_in_pair(pair, from_address)
                    if sender is None and verdict is None:
                        raise RefusedError(replies.STRANGER)  # mode "off": From believed
                    if sender is None:
                        aside.append(pair)
                    else:
                        candidates.append(self._candidate(session, view, pair, sender, verdict))
                findings = [PairFindings(c.hits, c.unverified) for c in candidates]
                action = decide_message(findings, bool(aside), self.config.rules.actions)
                ids = [
                    self._store(session, raw, incoming.source, message, candidate, action)
                    for candidate in candidates
                ]
                for pair in aside:
                    set_aside(
                        session,
                        pair,
                        raw,
                        envelope_from=normalise(incoming.envelope_from),
                        from_address=from_address,
                        peer=incoming.peer,
                        reason="the From names no participant of this pair"
                        + (f"; {verdict.summary()}" if verdict else ""),
                        outcome=_STATUS[action],
                    )
                reply = reply_for(action, findings, bool(aside))
                if in_same_commit is not None:
                    in_same_commit(session, reply, tuple(ids))
        except RefusedError as refusal:
            decision_log.refused(refusal.reply, incoming.source)
            return Outcome(reply=refusal.reply)
        hits = tuple(hit for candidate in candidates for hit in candidate.hits)
        if aside:
            decision_log.set_aside([p.token for p in aside])
        for message_id, c in zip(ids, candidates, strict=True):
            role = "mentor" if c.sender.id == c.pair.mentor_id else "mentee"
            decision_log.stored(
                message_id, c.pair.token, role, action, c.hits, reply, incoming.source
            )
        return Outcome(reply=reply, message_ids=tuple(ids), action=action, hits=hits)

    def _candidate(
        self,
        session: Session,
        view: MailView,
        pair: Pair,
        sender: Participant,
        verdict: AuthResult | None,
    ) -> _Candidate:
        address = pair_address(pair.token, self.domain)
        context = RuleContext(
            pair_address=address,
            relay_domain=self.domain,
            sender_role="mentor" if sender.id == pair.mentor_id else "mentee",
            messages_from_sender_in_pair=counters.sender_messages_in_pair(
                session, pair.id, sender.id
            ),
            sender_messages_last_hour=counters.sender_messages_since(
                session, sender.id, utcnow() - timedelta(hours=1)
            ),
            watched=sender.watched or pair.watched,
            paused=pair.status is PairStatus.PAUSED,
            # The sender's own addresses and concern@ may be named; the partner's count
            # like any other address (in To/Cc and in the text): no oracle for a guess.
            allowed_addresses=frozenset(
                {address, self.concern_address, *(a.email for a in sender.addresses)}
            ),
            own_loop_id=self.domain,
        )
        hits = run_rules(self.rules, view, context)
        unverified = verdict is not None and not verdict.authenticated
        if unverified:
            assert verdict is not None
            hits.append(Hit("authentication", verdict.summary()))
        return _Candidate(pair, sender, hits, unverified)

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
        # Nobody but moderators hears of mail whose From is not authenticated: a
        # notice would go to the participant it claims to be from.
        automated = candidate.unverified or is_automated_mail(message, self.domain)
        if action is Action.ACCEPT:
            queue_forward(session, self.config, stored, message)
        elif action is Action.HOLD and not automated:
            self.notices.held(session, stored, self.config.moderation.held_notices_per_day)
        elif action is Action.REJECT and not automated:
            reasons = reasons_for(Action.REJECT, candidate.hits, self.config.rules.actions)
            self.notices.to_sender(session, Notice.REFUSED, stored, reasons=reasons)
        elif action is Action.ESCALATE:
            # No "held" notice: it could warn someone grooming a child that staff are looking.
            escalate(session, self.config, self.notices, stored, candidate.hits)
        return stored.id

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
        if pair is None or pair.status not in OPEN_PAIR_STATES:
            raise RefusedError(replies.UNKNOWN_PAIR)
        return pair
