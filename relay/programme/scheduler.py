"""The tick: queue every scheduled item that is due, exactly once.

Owns sending the curriculum. A pair in a cohort has ``next_item_at``, the
earliest time it has something due; a tick reads only pairs whose time has
come (an idle tick reads nothing), in batches, locking them (FOR UPDATE
SKIP LOCKED on PostgreSQL; SQLite has one writer at a time). For each due
item and participant it inserts a ``scheduled_items`` row, whose unique key
(pair, item, participant) is claimed in the same commit as the mail it
queues, and moves ``next_item_at`` on. A restart, a kill -9, a second tick
or a second relay therefore never sends an item twice: whoever comes second
finds the item recorded, or fails on the key and sends nothing.

Only active pairs are read: nothing scheduled goes to a paused or ended
pair. After downtime (or a pause), a prompt more than ``late_prompt_limit``
late is recorded as skipped; check-ins and closings are still sent. At the
end of a pair's weeks the pair ends as "completed" (relay.programme.ending).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from relay.config import Config
from relay.delivery.bounces import load_bounce_addresses
from relay.delivery.notices import Notice, Notices
from relay.mail.addresses import OFFER_PREFIX, UNSUBSCRIBE_PREFIX, SignedAddresses, pair_address
from relay.offers.flow import Desk, expire_all
from relay.programme import ending
from relay.programme.checkins import new_checkin_id
from relay.programme.curricula import Curricula
from relay.programme.curriculum import Curriculum
from relay.programme.mail import programme_mail, programme_message_id, programme_thread_id
from relay.programme.nudges import send_nudges
from relay.programme.plan import PlannedSend, Planner
from relay.programme.reminders import list_unsubscribe
from relay.store.db import Store
from relay.store.models import Base, Checkin, Cohort, OutboxEntry, Pair, Participant, ScheduledSend
from relay.store.states import DeliveryStatus, ItemKind, OutboxKind, PairStatus, SendStatus, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
MAX_CONFLICTS = 5
_NOTICE = {
    ItemKind.PROMPT: Notice.PROMPT,
    ItemKind.CHECKIN: Notice.CHECKIN,
    ItemKind.CLOSING: Notice.CLOSING,
}


@dataclass
class TickReport:
    sent: int = 0
    skipped: int = 0
    completed: int = 0
    nudged: int = 0
    pairs: int = 0
    offers: int = 0  # match offers past their deadline, moved on (relay.offers.flow)

    def __str__(self) -> str:
        moved = f", {self.offers} offers moved on" if self.offers else ""
        return (
            f"{self.sent} sent, {self.skipped} skipped, {self.completed} pairs completed, "
            f"{self.nudged} nudges ({self.pairs} pairs due){moved}"
        )


@dataclass
class _Batch:
    """What one batch of pairs adds, written with a few executemany statements."""

    outbox: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    checkins: list[dict[str, Any]] = field(default_factory=list)
    cursors: list[dict[str, Any]] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    date: str = field(default_factory=lambda: format_datetime(utcnow()))  # one Date a batch


class Scheduler:
    def __init__(
        self,
        store: Store,
        config: Config,
        notices: Notices,
        checkin_addresses: SignedAddresses,
        curricula: Curricula | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.notices = notices
        self.checkin_addresses = checkin_addresses
        self.unsubscribe_addresses = SignedAddresses(
            checkin_addresses.domain, checkin_addresses.key, UNSUBSCRIBE_PREFIX
        )
        self.offer_addresses = SignedAddresses(
            checkin_addresses.domain, checkin_addresses.key, OFFER_PREFIX
        )
        self.curricula = curricula or Curricula()
        self.planner = Planner(config.programme.send_hour, config.programme.time_zone)
        self._silences_checked_at: datetime | None = None

    def reload(self, config: Config, notices: Notices) -> bool:
        """New settings and templates; curricula are re-read, or the old ones kept."""
        with self.store.read_session() as session:
            if not self.curricula.reload(session, config):
                return False
        self.config = config
        self.notices = notices
        self.planner = Planner(config.programme.send_hour, config.programme.time_zone)
        return True

    def tick(self, now: datetime) -> TickReport:
        """One scheduler run as of `now`: due items, then (every nudge_check) nudges."""
        report = self.run_due(now)
        offers = Desk(self.config, self.notices, self.offer_addresses)
        report.offers = expire_all(self.store, offers, now)
        last = self._silences_checked_at
        if last is not None and last <= now < last + self.config.programme.nudge_check:
            return report  # silences change by the day; reading every pair each minute is waste
        self._silences_checked_at = now
        try:
            with self.store.session() as session:
                report.nudged = send_nudges(
                    session, self.config, self.notices, self.unsubscribe_addresses, now
                )
        except IntegrityError:
            log.info("another relay sent these nudges first")
        return report

    def run_due(self, now: datetime) -> TickReport:
        """Queue everything due at `now`, batch by batch, each batch one commit."""
        report = TickReport()
        unusable: set[int] = set()  # pairs whose curriculum cannot be loaded
        conflicts = 0
        while True:
            try:
                with self.store.session() as session:
                    rows = self._due_pairs(session, now, unusable)
                    if not rows:
                        break
                    report.pairs += len(rows)
                    self._handle(session, rows, now, report, unusable)
            except IntegrityError:
                # Another relay claimed one of these items first; that batch is rolled
                # back whole (its mail too) and read again, now with those rows present.
                log.info("a scheduled item was claimed by another relay; reading again")
                conflicts += 1
                if conflicts > MAX_CONFLICTS:
                    log.error("scheduled items keep conflicting; leaving them to the next tick")
                    break
        return report

    def _due_pairs(self, session: Session, now: datetime, unusable: set[int]) -> list[Row[Any]]:
        mentor, mentee = aliased(Participant), aliased(Participant)
        query = (
            select(
                Pair.id,
                Pair.token,
                Pair.started_on,
                Pair.weeks,
                Pair.next_item_at,
                Pair.mentor_id,
                Pair.mentee_id,
                mentor.display_name.label("mentor_name"),
                mentor.email.label("mentor_email"),
                mentor.time_zone.label("mentor_zone"),
                mentor.reminders_off.label("mentor_off"),
                mentee.display_name.label("mentee_name"),
                mentee.email.label("mentee_email"),
                mentee.time_zone.label("mentee_zone"),
                mentee.reminders_off.label("mentee_off"),
                Cohort.curriculum,
            )
            .join(mentor, mentor.id == Pair.mentor_id)
            .join(mentee, mentee.id == Pair.mentee_id)
            .join(Cohort, Cohort.id == Pair.cohort_id)
            .where(Pair.status == PairStatus.ACTIVE, Pair.next_item_at <= now)
            .order_by(Pair.next_item_at, Pair.id)
            .limit(BATCH_SIZE)
        )
        if unusable:
            query = query.where(Pair.id.not_in(unusable))
        if not self.store.is_sqlite:
            query = query.with_for_update(of=Pair, skip_locked=True)
        return list(session.execute(query).all())  # type: ignore[arg-type]

    def _handle(
        self,
        session: Session,
        rows: list[Row[Any]],
        now: datetime,
        report: TickReport,
        unusable: set[int],
    ) -> None:
        earliest = min(row.next_item_at for row in rows)
        done: set[tuple[int, str, int]] = {
            (pair_id, key, participant_id)
            for pair_id, key, participant_id in session.execute(
                select(
                    ScheduledSend.pair_id, ScheduledSend.item_key, ScheduledSend.participant_id
                ).where(
                    ScheduledSend.pair_id.in_([row.id for row in rows]),
                    ScheduledSend.due_at >= earliest,
                )
            )
        }
        batch = _Batch()
        for row in rows:
            curriculum = self.curricula.get(self.config, row.curriculum)
            if curriculum is None or row.started_on is None or row.weeks is None:
                unusable.add(row.id)
                continue
            self._pair(row, curriculum, now, done, batch, report)
        self._write(session, batch, now)
        for pair_id in batch.completed:
            pair = session.get(Pair, pair_id)
            assert pair is not None
            ending.complete(session, self.config, self.notices, self.checkin_addresses, pair, now)

    def _pair(
        self,
        row: Row[Any],
        curriculum: Curriculum,
        now: datetime,
        done: set[tuple[int, str, int]],
        batch: _Batch,
        report: TickReport,
    ) -> None:
        planned = self.planner.plan(
            curriculum, row.started_on, row.weeks, row.mentor_zone, row.mentee_zone
        )
        next_at: datetime | None = None
        for send in planned:
            if send.due_at < row.next_item_at:
                continue
            if send.due_at > now:
                next_at = send.due_at
                break
            if send.kind is ItemKind.COMPLETED:
                if (row.id, send.key, row.mentor_id) not in done:
                    for participant_id in (row.mentor_id, row.mentee_id):
                        batch.sends.append(
                            _send_row(row.id, participant_id, send, now, SendStatus.SENT)
                        )
                    batch.completed.append(row.id)
                    report.completed += 1
                break
            participant_id = row.mentor_id if send.role == "mentor" else row.mentee_id
            if (row.id, send.key, participant_id) in done:
                continue
            late = now - send.due_at > self.config.programme.late_prompt_limit
            opted_out = row.mentor_off if send.role == "mentor" else row.mentee_off
            if send.kind is ItemKind.PROMPT and (late or opted_out):
                batch.sends.append(_send_row(row.id, participant_id, send, now, SendStatus.SKIPPED))
                report.skipped += 1
                continue
            batch.outbox.append(self._mail(row, curriculum, send, participant_id, now, batch))
            batch.sends.append(_send_row(row.id, participant_id, send, now, SendStatus.SENT))
            report.sent += 1
        batch.cursors.append({"pair": row.id, "next_at": next_at})

    def _mail(
        self,
        row: Row[Any],
        curriculum: Curriculum,
        send: PlannedSend,
        participant_id: int,
        now: datetime,
        batch: _Batch,
    ) -> dict[str, Any]:
        domain = self.config.relay.domain
        programme_name = self.config.relay.programme_name
        reader_is_mentor = send.role == "mentor"
        reader_name = row.mentor_name if reader_is_mentor else row.mentee_name
        reader_email = row.mentor_email if reader_is_mentor else row.mentee_email
        partner_name = row.mentee_name if reader_is_mentor else row.mentor_name
        address = pair_address(row.token, domain)
        rendered = curriculum.render(
            send.template,
            programme_name=programme_name,
            pair_address=address,
            reader_name=reader_name,
            reader_role=send.role,
            partner_name=partner_name,
            partner_role="mentee" if reader_is_mentor else "mentor",
            week=send.week,
            weeks=row.weeks,
        )
        if send.kind is ItemKind.CHECKIN:
            checkin_id = new_checkin_id()
            batch.checkins.append(
                {
                    "id": checkin_id,
                    "pair_id": row.id,
                    "participant_id": participant_id,
                    "item_key": send.key,
                    "week": send.week,
                    "sent_at": now,
                    "answered_at": None,
                    "score": None,
                    "comment": None,
                    "flagged": False,
                }
            )
            sender_name = programme_name
            sender = self.checkin_addresses.address(checkin_id)
            message_id = programme_message_id(f"{send.key}-{send.role}", row.token, domain)
            references = unsubscribe = ""
        else:
            sender_name = f"{programme_name} programme"
            sender = address
            message_id = programme_message_id(send.key, row.token, domain)
            references = programme_thread_id(row.token, domain)
            unsubscribe = list_unsubscribe(self.unsubscribe_addresses, participant_id)
        content = programme_mail(
            self.config,
            from_name=sender_name,
            from_address=sender,
            to_name=reader_name,
            to_address=reader_email,
            subject=rendered.subject,
            body=rendered.body,
            message_id=message_id,
            references=references,
            date=batch.date,
            unsubscribe=unsubscribe,
        )
        queued_at = utcnow()  # the worker's clock, even when a tick runs "as of" another time
        return {
            "kind": OutboxKind.NOTICE,
            "notice": _NOTICE[send.kind].value,
            "message_id": None,
            "recipient": reader_email,
            "content": content,
            "status": DeliveryStatus.QUEUED,
            "attempts": 0,
            "next_attempt_at": queued_at,
            "created_at": queued_at,
        }

    def _write(self, session: Session, batch: _Batch, now: datetime) -> None:
        if batch.checkins:
            session.execute(insert(_table(Checkin)), batch.checkins)
        if batch.sends:
            session.execute(insert(_table(ScheduledSend)), batch.sends)
        if batch.outbox:
            session.execute(insert(_table(OutboxEntry)), batch.outbox)
        if batch.cursors:
            table = _table(Pair)
            session.execute(
                update(table)
                .where(table.c.id == bindparam("pair"))
                .values(next_item_at=bindparam("next_at")),
                batch.cursors,
            )


def _send_row(
    pair_id: int, participant_id: int, send: PlannedSend, now: datetime, status: SendStatus
) -> dict[str, Any]:
    return {
        "pair_id": pair_id,
        "participant_id": participant_id,
        "item_key": send.key,
        "week": send.week,
        "kind": send.kind,
        "due_at": send.due_at,
        "status": status,
        "done_at": now,
    }


def make_scheduler(store: Store, config: Config, notices: Notices, strict: bool) -> Scheduler:
    """A scheduler with every curriculum in use loaded; strict: a broken one is an error."""
    checkin_addresses = load_bounce_addresses(store, config.relay.domain).checkin_addresses()
    curricula = Curricula()
    with store.read_session() as session:
        if strict:
            curricula.load(session, config)
        else:
            curricula.reload(session, config)
    return Scheduler(store, config, notices, checkin_addresses, curricula)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)
