"""map_thread() on a real store: the ids a reply points at, as the partner knows them.

Each side knows a message by a different id: the sender by the Message-ID
their client wrote, the recipient by the relay's own. A reply's In-Reply-To
and References are translated across; ids the pair never exchanged are
dropped, so nothing from outside the pair (or from another pair) leaks in.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.forwarding import map_thread
from relay.delivery.notices import Notices
from relay.store import db, registry
from relay.store.models import Message, Pair, Participant
from relay.store.states import MessageStatus, Role

ANA = "ana.real@mentors.example.org"
BEN = "ben.real@school.example.net"


def _stored(
    session: Session,
    pair: Pair,
    sender: Participant,
    recipient: Participant,
    original: str | None,
    relay_id: str,
) -> None:
    session.add(
        Message(
            pair_id=pair.id,
            sender_id=sender.id,
            recipient_id=recipient.id,
            status=MessageStatus.QUEUED,
            raw=b"x",
            size=1,
            original_message_id=original,
            relay_message_id=relay_id,
            source="smtp",
        )
    )


def _reply(in_reply_to: str, references: str) -> EmailMessage:
    reply = EmailMessage()
    reply["In-Reply-To"] = in_reply_to
    reply["References"] = references
    reply.set_content("thanks")
    return reply


def _pair(session: Session, config: Config, mentor: str, mentee: str) -> Pair:
    registry.add_participant(session, mentor, "Mentor " + mentor[0], Role.MENTOR)
    registry.add_participant(session, mentee, "Mentee " + mentee[0], Role.MENTEE)
    created = registry.create_pair(session, Notices(config), config.relay.domain, mentor, mentee)
    return created.pair


def test_a_reply_points_at_the_ids_the_partner_knows(store: db.Store, config: Config) -> None:
    with store.session() as session:
        pair = _pair(session, config, ANA, BEN)
        ana, ben = pair.mentor, pair.mentee
        # Ana wrote <ana-1@mentors>; Ben received it as <r-1@relay>. Then Ben wrote <ben-2@school>.
        _stored(session, pair, ana, ben, "<ana-1@mentors.example.org>", "<r-1@relay.test>")
        _stored(session, pair, ben, ana, "<ben-2@school.example.net>", "<r-2@relay.test>")
        session.flush()

        # Ben answers Ana's message, which he knows as <r-1>, and cites his own <ben-2>.
        reply = _reply(
            "<r-1@relay.test>",
            "<elsewhere@lists.example.com> <r-1@relay.test> <ben-2@school.example.net>",
        )
        in_reply_to, references = map_thread(session, pair, ben.id, reply)

    assert in_reply_to == ("<ana-1@mentors.example.org>",)
    assert references == ("<ana-1@mentors.example.org>", "<r-2@relay.test>")


def test_ids_the_sender_cannot_know_are_dropped(store: db.Store, config: Config) -> None:
    with store.session() as session:
        pair = _pair(session, config, ANA, BEN)
        other = _pair(session, config, "cara@mentors.example.org", "dan@school.example.net")
        ana, ben = pair.mentor, pair.mentee
        _stored(session, pair, ana, ben, "<ana-1@mentors.example.org>", "<r-1@relay.test>")
        _stored(session, other, other.mentor, other.mentee, "<cara-1@mentors>", "<r-9@relay.test>")
        session.flush()

        # Ben cites Ana's original id (which he never saw), another pair's ids, and an unknown one.
        reply = _reply(
            "<ana-1@mentors.example.org>",
            "<r-9@relay.test> <cara-1@mentors> <nobody@nowhere.example>",
        )
        assert map_thread(session, pair, ben.id, reply) == ((), ())
        # A message without threading headers maps to nothing, without a query.
        assert map_thread(session, pair, ben.id, EmailMessage()) == ((), ())
