"""accept(): the one way in, for SMTP, LMTP and IMAP alike.

Orchestrates what is decided about an incoming message, like Mailman's
incoming runner: parse it, find the pair and which participant is writing
(the in-memory pair directory), run the moderation rules, hand the rows the
message becomes (transcript row, forward or notice, set-aside row) to the
group writer, and reply. A 250 is returned only once the commit holding the
message is done, so a 250 always means the message is in the database.
Nothing about a message is decided in a source; the SQL lives in relay/store.

A From naming a participant is believed only when authenticated
(relay.mail.authentication); otherwise it is taken (250) and held for
moderators, nobody else told, and a From naming no participant is taken the
same way and set aside: no address oracle (relay.rules.senders). Mode "off"
believes From as written. postmaster@, abuse@ and the notices' address:
relay.delivery.mailboxes; bounce addresses: relay.delivery.bounces.

prepare() is synchronous and reads the database (on a connection held between
messages: Store.held_read) and maybe DNS. The daemon (accept_async) runs it on
the event loop where nothing in it can wait, in the long-lived intake threads
where only PostgreSQL can, else in a worker thread (relay.intake_thread says
which and why), so a stall holds no other session and intake_timeout is
answered. The commit is awaited without a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Connection

from relay import decision_log, handoff
from relay.config import Config
from relay.delivery import mailboxes
from relay.delivery.bounces import load_bounce_addresses
from relay.delivery.forwarding import thread_ids, translate_thread
from relay.delivery.notices import Notices
from relay.errors import RefusedError
from relay.incoming import Incoming as Incoming
from relay.incoming import Outcome as Outcome  # both re-exported: sources import them from here
from relay.intake_own import Recipients, Taken, take_own_mail
from relay.intake_pairs import writer_in_pair
from relay.intake_rows import Aside, Candidate, CommitHook, Prepared, rows_for
from relay.intake_thread import DECIDE_HERE_MAX_BYTES as DECIDE_HERE_MAX_BYTES
from relay.intake_thread import IntakeThread, Where, where_decided
from relay.mail import limits, rawinput, replies
from relay.mail.addresses import BounceAddresses, normalise, pair_address, token_of
from relay.mail.authentication import Authenticator
from relay.mail.reading import parse, single_from_address
from relay.mail.replies import Reply
from relay.mail.text import MailView
from relay.programme import inbound
from relay.rules.automated import is_automated as is_automated_mail
from relay.rules.base import Hit, RuleContext
from relay.rules.engine import build_rules, run_rules
from relay.rules.identity import strip_forged_results
from relay.rules.senders import PairFindings, decide_message, reply_for
from relay.store.counters import sender_counts
from relay.store.db import Store
from relay.store.directory import PairDirectory, PairEntry, Person, StaleDirectory
from relay.store.group_commit import GroupWriter
from relay.store.messages import thread_rows
from relay.store.set_aside import set_aside_row
from relay.store.states import OPEN_PAIR_STATES, PairStatus, utcnow

log = logging.getLogger(__name__)

ACTIVE_TOKEN_SECONDS = 5.0
DECIDE_TRIES = 3  # a message decided on a directory that changed before its commit
ACTIVE_TOKEN_CACHE_SIZE = 10_000
# How a source waits for a message's commit (relay.sources.deadline.await_commit: bounded).
CommitWait = Callable[[Future[tuple[int, ...]]], Awaitable[tuple[int, ...] | None]]


class Intake:
    def __init__(self, store: Store, config: Config, writer: GroupWriter | None = None) -> None:
        self.store = store
        self.config = config
        self.domain = config.relay.domain.lower()
        self.rules = build_rules(config.rules)
        self.notices = Notices(config)
        self.concern_address = f"{config.safeguarding.concern_address}@{self.domain}".lower()
        self.authenticator = Authenticator.configured(config.authentication_mode, config.rules)
        self.directory = PairDirectory()
        self.writer = writer or GroupWriter(store)
        self.intake_thread = IntakeThread()  # PostgreSQL's messages (relay.intake_thread)
        self._bounce_addresses: BounceAddresses | None = None
        self._active_tokens: dict[str, float] = {}  # token -> until when RCPT may skip the query

    def reload(self, config: Config, notices: Notices) -> None:
        """New rules, actions and templates for the next message (SIGHUP)."""
        self.rules = build_rules(config.rules)
        self.notices = notices
        self.authenticator = Authenticator.configured(config.authentication_mode, config.rules)
        self.config = config
        self.concern_address = f"{config.safeguarding.concern_address}@{self.domain}".lower()
        self.store.held_reads.close()  # opened anew by the next message

    def close(self) -> None:
        """Commit what is queued, stop the group writer and the intake thread, close the
        held read connections."""
        self.writer.close()
        self.intake_thread.close()
        self.store.held_reads.close()

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
        with self.store.held_read() as connection:
            pair, _ = self.directory.lookup(connection, token)
            if pair is None or pair.status not in OPEN_PAIR_STATES:  # a refusal: not stale?
                pair, _ = self.directory.lookup(connection, token, fresh=True)
        if pair is None or pair.status not in OPEN_PAIR_STATES:
            return replies.UNKNOWN_PAIR  # ended or never was: one answer, no oracle
        if len(self._active_tokens) >= ACTIVE_TOKEN_CACHE_SIZE:
            self._active_tokens.clear()
        # Safe to remember: accept() looks the pair up again, so a pair ended
        # meanwhile still refuses the message (550 5.1.1 after DATA).
        self._active_tokens[token] = now + ACTIVE_TOKEN_SECONDS
        return replies.RECIPIENT_OK

    # -- after DATA ----------------------------------------------------------

    def accept(self, incoming: Incoming, in_same_commit: CommitHook | None = None) -> Outcome:
        """Decide and store a message; in_same_commit adds a source's own rows to that commit.

        The IMAP source passes in_same_commit to record the UID it took the message from,
        so the message and the record of having taken it commit together or not at all.
        """
        for attempt in range(1, DECIDE_TRIES + 1):
            prepared = self.prepare(incoming, attempt > 1)
            if isinstance(prepared, Outcome):
                return prepared
            try:
                ids = self.writer.write(prepared.work(in_same_commit))
            except StaleDirectory:
                if attempt == DECIDE_TRIES:
                    raise
                continue  # a pair or participant changed meanwhile: decide again
            return self._outcome(incoming, prepared, ids)
        raise AssertionError("unreachable")

    async def accept_async(
        self,
        incoming: Incoming,
        in_same_commit: CommitHook | None = None,
        wait_commit: CommitWait | None = None,
    ) -> Outcome | None:
        """accept() for the event loop: decided where where() says, committed with others;
        no thread waits for the commit, so a batch is what arrived during the last one.
        wait_commit, for a message decided on the loop: how the commit is waited for (a
        time bound), None from it meaning the bound passed and nothing was stored."""
        where = Where.LOOP if wait_commit is not None else self.where(incoming)
        for attempt in range(1, DECIDE_TRIES + 1):
            if where is Where.LOOP:
                decided = self._decide_and_submit(incoming, attempt > 1, in_same_commit)
            elif where is Where.INTAKE_THREAD:
                deciding = functools.partial(
                    self._decide_and_submit, incoming, attempt > 1, in_same_commit
                )
                decided = await handoff.wrap(self.intake_thread.submit(deciding))
            else:
                decided = await asyncio.to_thread(
                    self._decide_and_submit, incoming, attempt > 1, in_same_commit
                )
            if isinstance(decided, Outcome):
                return decided
            prepared, written = decided
            try:
                ids = await (wait_commit or handoff.wrap)(written)
            except StaleDirectory:
                if attempt == DECIDE_TRIES:
                    raise
                continue  # a pair or participant changed meanwhile: decide again
            return None if ids is None else self._outcome(incoming, prepared, ids)
        raise AssertionError("unreachable")

    def decides_here(self, incoming: Incoming) -> bool:
        """Whether prepare() may run on the event loop: nothing in it can wait."""
        return self.where(incoming) is Where.LOOP

    def where(self, incoming: Incoming) -> Where:
        """Where prepare() runs for this message (relay.intake_thread)."""

        def any_own() -> bool:
            recipients = [normalise(r) for r in incoming.recipients]
            signed, concern = self.bounce_addresses, self.concern_address
            return Recipients.sort(recipients, signed, concern, self.config).any_own

        sqlite, dns = self.store.is_sqlite, self.authenticator.asks_dns
        return where_decided(sqlite, dns, len(incoming.raw), any_own)

    def _decide_and_submit(
        self, incoming: Incoming, again: bool, hook: CommitHook | None
    ) -> Outcome | tuple[Prepared, Future[tuple[int, ...]]]:
        # Submitted from prepare()'s thread: the commit starts without a hop through the
        # event loop, and no thread waits for it.
        prepared = self.prepare(incoming, again)
        if isinstance(prepared, Outcome):
            return prepared
        return prepared, self.writer.submit(prepared.work(hook))

    def recipient_known(self, address: str) -> bool:
        """A pair address RCPT accepted moments ago: answered on the event loop, no thread."""
        token = token_of(normalise(address), self.domain)
        return token is not None and self._active_tokens.get(token, 0.0) > time.monotonic()

    def prepare(
        self, incoming: Incoming, again: bool = False, authenticator: Authenticator | None = None
    ) -> Prepared | Outcome:
        """Everything up to the write: parse, who and which pair, rules, the rows to store.

        again: deciding anew after a stale directory; mail for the relay's own
        addresses among the recipients was taken (and committed) the first time.
        authenticator: instead of the configured one (relay.warmup's, which asks no DNS).
        """
        recipients = Recipients.sort(
            list(dict.fromkeys(normalise(r) for r in incoming.recipients)),
            self.bounce_addresses,
            self.concern_address,
            self.config,
        )
        pairs = recipients.pairs
        taken = Taken()
        try:
            if len(incoming.raw) > self.config.relay.max_message_size:
                raise RefusedError(replies.TOO_BIG)
            raw = rawinput.normalise(incoming.raw)
            limits.check_headers(raw, self.config.relay)
            message = parse(raw)
            if recipients.any_own and not again:
                taken = take_own_mail(
                    self.store,
                    self.config,
                    self.notices,
                    self.bounce_addresses,
                    self.rules,
                    self.authenticator,
                    recipients,
                    message,
                    raw,
                    incoming,
                )
                if recipients.own and not pairs:
                    return Outcome(replies.OK, action=taken.own_action, notified=taken.noticed)
            if not pairs:
                # A concern gets the answer a stranger's mail to concern@ gets: no oracle.
                return Outcome(reply=replies.DISCARDED, notified=taken.noticed)
            if not incoming.envelope_from or incoming.envelope_from == "<>":
                raise RefusedError(replies.NULL_SENDER)
            from_address = single_from_address(message)
            trusted_id = self.config.rules.trusted_authserv_id
            if trusted_id and strip_forged_results(message, trusted_id):
                log.info("removed Authentication-Results forged upstream as %s", trusted_id)
            verdict = (authenticator or self.authenticator).check(
                raw, message, from_address, incoming.envelope_from, incoming.helo, incoming.peer
            )
            view = MailView.from_message(message)
            candidates: list[Candidate] = []
            aside: list[Aside] = []
            with self.store.held_read() as connection:
                for recipient in pairs:
                    pair, sender, version = writer_in_pair(
                        self.directory,
                        connection,
                        self.domain,
                        recipient,
                        from_address,
                        believe_from=verdict is None,
                    )
                    if sender is None:
                        row = set_aside_row(
                            pair.id,
                            raw,
                            envelope_from=normalise(incoming.envelope_from),
                            from_address=from_address,
                            peer=incoming.peer,
                            reason="the From names no participant of this pair"
                            + (f"; {verdict.summary()}" if verdict else ""),
                        )
                        aside.append(Aside(pair, version, row))
                    else:
                        candidates.append(
                            self._candidate(connection, view, message, pair, sender, version)
                        )
                        if verdict is not None and not verdict.authenticated:
                            candidates[-1].unverified = True
                            candidates[-1].hits.append(Hit("authentication", verdict.summary()))
        except RefusedError as refusal:
            decision_log.refused(refusal.reply, incoming.source)
            return Outcome(reply=refusal.reply)
        findings = [PairFindings(c.hits, c.unverified) for c in candidates]
        action = decide_message(findings, bool(aside), self.config.rules.actions)
        reply = reply_for(action, findings, bool(aside))
        prepared = Prepared(
            self.config, self.notices, self.directory, candidates, action, reply, aside=aside
        )
        automated = is_automated_mail(message, self.domain)
        source = incoming.source
        prepared.rows = [
            rows_for(self.config, self.notices, raw, source, message, c, action, automated)
            for c in candidates
        ]
        return prepared

    def _outcome(self, incoming: Incoming, prepared: Prepared, ids: tuple[int, ...]) -> Outcome:
        action, candidates, reply = prepared.action, prepared.candidates, prepared.reply
        if prepared.aside:
            decision_log.set_aside([each.pair.token for each in prepared.aside])
        for id_, c in zip(ids, candidates, strict=True):
            role = c.sender.role.value
            decision_log.stored(id_, c.pair.token, role, action, c.hits, reply, incoming.source)
        hits = tuple(hit for candidate in candidates for hit in candidate.hits)
        return Outcome(reply=reply, message_ids=ids, action=action, hits=hits)

    def _candidate(
        self,
        connection: Connection,
        view: MailView,
        message: EmailMessage,
        pair: PairEntry,
        sender: Person,
        version: int,
    ) -> Candidate:
        address = pair_address(pair.token, self.domain)
        rules = self.config.rules
        in_pair, last_hour = sender_counts(
            connection,
            pair.id,
            sender.id,
            utcnow() - timedelta(hours=1),
            in_pair_up_to=0 if "new_pair" in rules.disabled else rules.new_pair_messages,
            recent_up_to=0 if "rate" in rules.disabled else rules.rate_per_hour,
        )
        context = RuleContext(
            pair_address=address,
            relay_domain=self.domain,
            sender_role="mentor" if sender.id == pair.mentor.id else "mentee",
            messages_from_sender_in_pair=in_pair,
            sender_messages_last_hour=last_hour,
            watched=sender.watched or pair.watched,
            paused=pair.status is PairStatus.PAUSED,
            # The sender's own addresses and concern@ may be named; the partner's count
            # like any other address (in To/Cc and in the text): no oracle for a guess.
            allowed_addresses=frozenset({address, self.concern_address, *sender.addresses}),
            own_loop_id=self.domain,
        )
        hits = run_rules(self.rules, view, context)
        wanted = thread_ids(message)
        thread = (
            translate_thread(
                thread_rows(connection, pair.id, wanted), sender.id, pair.token, message
            )
            if wanted
            else ((), ())
        )
        return Candidate(pair, sender, hits, version, thread)
