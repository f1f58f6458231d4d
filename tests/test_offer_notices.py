"""Mail about an offer besides the loop itself: cancelling and reminders, with the daemon.

`relay offers cancel ID` tells the mentee, and the mentor when one was invited;
`relay tick --at` half way to a deadline reminds whoever the offer waits on, once.
What is asserted is what people receive at the sink.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from relay.config import load_config
from relay.delivery.bounces import load_bounce_addresses
from relay.delivery.notices import Notices
from relay.offers import flow
from relay.store import db
from relay.store.models import OutboxEntry
from relay.store.states import utcnow
from tests.conftest import RunningRelay, Sink, wait_for, write_config
from tests.programme_helpers import ok
from tests.test_offers import (
    ANA,
    MEI,
    MENTEE,
    RAJ,
    body,
    letters_to,
    offer_config,  # noqa: F401 (a fixture)
    offer_round,
    offers,
    one_letter,
    reply,
    reply_address,
    running,  # noqa: F401 (a fixture)
    states,
)

HIDDEN = (MENTEE, ANA, RAJ, MEI, "school.example.net", "mentors.example.org", "Hill School")


def test_cancel_tells_the_mentee_and_the_invited_mentor_and_nobody_else(
    offer_config: Path,  # noqa: F811
    running: RunningRelay,  # noqa: F811
    sink: Sink,
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    reply(running, MENTEE, reply_address(letter), "2")
    invitation = one_letter(sink, RAJ, "Would you mentor Lea Novak?")
    (offer,) = offers(offer_config)
    ok(offer_config, "offers", "cancel", str(offer["id"]), "--as", "sam")

    withdrawn = one_letter(sink, MENTEE, "has been withdrawn")
    assert "no longer on offer" in body(withdrawn) and "coordinator will be in touch" in body(
        withdrawn
    )
    assert reply_address(withdrawn) == reply_address(letter)
    to_mentor = one_letter(sink, RAJ, "No need to answer")
    assert "mentor Lea Novak" in body(to_mentor)
    assert reply_address(to_mentor) == reply_address(invitation)
    for received in (withdrawn, to_mentor):
        raw = received.data.decode()
        for hidden in HIDDEN:
            if hidden not in str(received.message["To"]):
                assert hidden not in raw, hidden
        assert "sam" not in body(received)  # who cancelled is for the coordinators
    # Mentors only listed, never asked, hear nothing.
    assert not letters_to(sink, ANA, "") and not letters_to(sink, MEI, "")

    reply(running, RAJ, reply_address(invitation), "yes")
    assert "moved on" in body(one_letter(sink, RAJ, "Re: your offer"))
    assert states(offer_config) == [
        ("cancelled", ((1, "withdrawn"), (2, "withdrawn"), (3, "withdrawn")))
    ]
    assert not letters_to(sink, MENTEE, "Meet your")


def test_cancel_before_a_choice_tells_only_the_mentee(
    offer_config: Path,  # noqa: F811
    running: RunningRelay,  # noqa: F811
    sink: Sink,
):
    offer_round(offer_config)
    one_letter(sink, MENTEE, "Choose your mentor")
    (offer,) = offers(offer_config)
    ok(offer_config, "offers", "cancel", str(offer["id"]))
    one_letter(sink, MENTEE, "has been withdrawn")
    wait_for(lambda: len(sink.received) == 2, what="two letters")
    assert {r.recipients[0] for r in sink.received} == {MENTEE}


def _tick(config: Path, after: timedelta) -> str:
    return ok(config, "tick", "--at", (utcnow() + after).strftime("%Y-%m-%d %H:%M"))


def test_the_mentee_is_reminded_once_half_way_to_the_deadline(
    offer_config: Path,  # noqa: F811
    running: RunningRelay,  # noqa: F811
    sink: Sink,
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    _tick(offer_config, timedelta(days=1, hours=11))  # offer_expires 3d: not yet half way
    assert not letters_to(sink, MENTEE, "Reminder")
    _tick(offer_config, timedelta(days=1, hours=13))
    reminder = one_letter(sink, MENTEE, "Reminder: choose your mentor")
    text = body(reminder)
    for shown in ("1. Ana Ruiz (Civil engineering)", "2. Raj Patel", "3. Mei Chen", "answer by"):
        assert shown in text, shown
    assert reply_address(reminder) == reply_address(letter)
    for hidden in (ANA, RAJ, MEI, "mentors.example.org", "Acme Bridges", "Bolt"):
        assert hidden not in reminder.data.decode(), hidden
    # A second tick, later but before the deadline, sends nothing more.
    _tick(offer_config, timedelta(days=2))
    _tick(offer_config, timedelta(days=2, hours=12))
    # Answering the reminder is answering the offer.
    reply(running, MENTEE, reply_address(reminder), "2")
    one_letter(sink, RAJ, "Would you mentor Lea Novak?")
    assert len(letters_to(sink, MENTEE, "Reminder")) == 1


def test_the_invited_mentor_is_reminded_and_the_next_one_at_their_own_half_way(
    offer_config: Path,  # noqa: F811
    running: RunningRelay,  # noqa: F811
    sink: Sink,
):
    offer_round(offer_config)
    reply(running, MENTEE, reply_address(one_letter(sink, MENTEE, "Choose your mentor")), "3, 1")
    one_letter(sink, MEI, "Would you mentor Lea Novak?")
    _tick(offer_config, timedelta(days=1, hours=13))
    reminder = one_letter(sink, MEI, "Reminder: would you mentor Lea Novak?")
    assert '"yes" or "no"' in body(reminder)
    assert MENTEE not in reminder.data.decode()
    # Mei says nothing: at her deadline Ana is invited, and reminded half way through hers.
    moved = _tick(offer_config, timedelta(days=3, hours=1))
    assert "1 offers moved on" in moved
    one_letter(sink, ANA, "Would you mentor Lea Novak?")
    _tick(offer_config, timedelta(days=4))
    assert not letters_to(sink, ANA, "Reminder")
    _tick(offer_config, timedelta(days=4, hours=15))
    ana_reminder = one_letter(sink, ANA, "Reminder: would you mentor")
    reply(running, ANA, reply_address(ana_reminder), "Yes")
    one_letter(sink, MENTEE, "Meet your mentor")
    assert not letters_to(sink, MENTEE, "Reminder")  # she had chosen in time
    assert len(letters_to(sink, MEI, "Reminder")) == 1
    assert states(offer_config) == [
        ("accepted", ((1, "accepted"), (2, "withdrawn"), (3, "expired")))
    ]


def test_two_relays_ticking_at_once_send_one_reminder(
    offer_config: Path,  # noqa: F811
    running: RunningRelay,  # noqa: F811
    sink: Sink,
):
    offer_round(offer_config)
    one_letter(sink, MENTEE, "Choose your mentor")
    config = load_config(offer_config)
    stores = [db.Store(config.database.url) for _ in range(2)]
    addresses = load_bounce_addresses(stores[0], config.relay.domain).offer_addresses()
    desk = flow.Desk(config, Notices(config), addresses)
    when = utcnow() + timedelta(days=1, hours=13)
    start = threading.Barrier(2)

    def tick(store: db.Store) -> None:  # what each relay's scheduler does for offers
        start.wait()
        flow.expire_all(store, desk, when)

    relays = [threading.Thread(target=tick, args=(store,)) for store in stores]
    for relay in relays:
        relay.start()
    for relay in relays:
        relay.join(60)
    one_letter(sink, MENTEE, "Reminder")
    try:
        with stores[0].read_session() as session:
            queued = session.scalars(
                select(OutboxEntry.recipient).where(OutboxEntry.notice == "offer_reminder")
            ).all()
    finally:
        for store in stores:
            store.dispose()
    assert queued == [MENTEE]


def test_a_round_s_letters_are_the_same_bytes_as_any_notice(tmp_path: Path):
    """making.py builds a round's letters with letters.BATCH_POLICY (header objects reused)."""
    import email.policy
    import re

    from relay.delivery.notices import Moderator, Notice
    from relay.offers import letters

    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'r.db'}")
    config = load_config(path)
    notices = Notices(config)
    candidates = [
        {"rank": 1, "name": "Zoë Ångström", "field": "Géographie", "interests": ["ponts"],
         "goals": [], "languages": ["Français"], "reasons": ["parle français"]},
    ]  # fmt: skip
    built = []
    for policy in (email.policy.default, letters.BATCH_POLICY, letters.BATCH_POLICY):
        for who in ("Léa Novák", "Kai Berg", '"Quoted, Name" <x@y>'):
            row = letters.outbox_row(
                config,
                notices,
                Notice.OFFER,
                Moderator(who, "lea@school.example.net"),
                f"offer-12-{'a' * 16}@relay.test",
                candidates=candidates,
                expires="Monday",
                policy=policy,
            )
            built.append(re.sub(rb"(Date|Message-ID): [^\r]*", b"", row["content"]))
    assert built[:3] == built[3:6] == built[6:]
    assert b"=?utf-8?" in built[0]  # the non-ASCII name was encoded, not written raw
