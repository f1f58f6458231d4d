"""The first message's one-off costs, paid while the daemon starts instead of by a client.

A fresh `relay serve` answered its first message in 18-30 ms against ~5 ms for
the next ones: SQLAlchemy compiling each statement on its first use, the pool
opening connections, the group writer's thread starting, modules and
templates loaded on first use. warm_up() runs intake's whole path once, before
the SMTP listener opens, on a made-up message from the newest open pair's
mentor to that pair (with authentication off: no DNS is asked), then writes
its rows (on SQLite; PostgreSQL's sequences would keep the ids taken) and the
delivery worker's claim in a transaction that is rolled back.
Nothing is stored, logged as a decision or sent, and the pair directory is left
empty as it was. A relay without an open pair has no message to warm up with
and skips it; a failure is logged and the start goes on (it only costs the
first message its speed).
"""

from __future__ import annotations

import logging
from email.utils import formatdate

from sqlalchemy import select

from relay.delivery.worker import DeliveryWorker
from relay.intake import Incoming, Intake
from relay.intake_rows import Prepared
from relay.mail.addresses import pair_address
from relay.mail.authentication import Authenticator
from relay.store.models import Pair
from relay.store.states import OPEN_PAIR_STATES

log = logging.getLogger(__name__)

_NEWEST_OPEN_PAIR = (
    select(Pair.token).where(Pair.status.in_(OPEN_PAIR_STATES)).order_by(Pair.id.desc()).limit(1)
)


def warm_up(intake: Intake, worker: DeliveryWorker | None = None) -> bool:
    """Run one made-up message through intake (and the worker's claim), storing nothing.

    True when it ran; False when there is no open pair or it failed (logged).
    """
    try:
        return _warm_up(intake, worker)
    except Exception:
        log.warning(
            "warming up the intake path failed; the first message may be slower", exc_info=True
        )
        return False


def _warm_up(intake: Intake, worker: DeliveryWorker | None) -> bool:
    intake.writer.start()
    store = intake.store
    with store.read_connection() as connection:
        token = connection.execute(_NEWEST_OPEN_PAIR).scalar()
        pair = intake.directory.lookup(connection, token)[0] if token else None
    if pair is None:
        return False
    address = pair_address(pair.token, intake.domain)
    sender = pair.mentor.email
    raw = (
        f"From: <{sender}>\r\nTo: <{address}>\r\nSubject: warm-up\r\n"
        f"Date: {formatdate()}\r\nMessage-ID: <warm-up@{intake.domain}>\r\n\r\nHello.\r\n"
    ).encode()
    incoming = Incoming(raw, sender, (address,), "smtp")
    try:
        prepared = intake.prepare(incoming, authenticator=Authenticator("off"))
        with store.engine.connect() as connection:
            transaction = connection.begin()
            try:
                # Not on PostgreSQL: a sequence is not rolled back, so the rows would take
                # an id from every start's first message (message 2 where 1 was expected).
                if isinstance(prepared, Prepared) and store.is_sqlite:
                    prepared.write(connection)
                if worker is not None:
                    worker.claim_on(connection)
            finally:
                transaction.rollback()
    finally:
        # The pair stays out of the cache: a RCPT answered from it would not see the pair
        # end before its first message (RCPT refuses an ended pair as an unknown one).
        intake.directory.forget()
    return True
