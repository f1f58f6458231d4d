"""Match offers by email, end to end against the running relay.

`relay match offer` mails the mentee a few mentors; the mentee replies with a
number over SMTP, the chosen mentor gets an invitation and replies yes or no, and
a yes makes the pair (in the cohort, with introductions). `relay tick --at` plays
the deadlines. What is asserted is what people receive at the sink and what
`relay offers` says.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from relay.config import load_config
from relay.store import db
from relay.store.states import utcnow
from tests.conftest import (
    TEST_DATABASE_URL,
    Received,
    RunningRelay,
    Sink,
    mail,
    wait_for,
    write_config,
)
from tests.programme_helpers import ok, run

COORDINATOR = "coordinator@programme.example"
MENTEE = "lea@school.example.net"
ANA, RAJ, MEI = (
    "ana@mentors.example.org",
    "raj@mentors.example.org",
    "mei@mentors.example.org",
)
MENTORS_CSV = """email,name,field,interests,goals,languages,time_zone,organisation,capacity
ana@mentors.example.org,Ana Ruiz,Civil engineering,bridges;concrete,career change,English;Spanish,Europe/London,Acme Bridges Ltd,1
raj@mentors.example.org,Raj Patel,Civil engineering,bridges,first job,English,Europe/London,Bolt,1
mei@mentors.example.org,Mei Chen,Software,concrete,career change,English,Europe/Paris,Cog,2
"""
MENTEES_CSV = """email,name,field,interests,goals,languages,time_zone,organisation
lea@school.example.net,Lea Novak,Civil engineering,bridges;concrete,career change,English,Europe/London,Hill School
"""


@pytest.fixture
def offer_config(tmp_path: Path, database_url: str, sink: Sink) -> Path:
    path = write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "1s"\nretry_first = "1s"\nretry_max = "2s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        moderation=f'moderators = ["{COORDINATOR}"]',
    )
    (tmp_path / "mentors.csv").write_text(MENTORS_CSV)
    (tmp_path / "mentees.csv").write_text(MENTEES_CSV)
    return path


@pytest.fixture
def running(offer_config: Path) -> Iterator[RunningRelay]:
    config = load_config(offer_config)
    store = db.Store(config.database.url)
    db.upgrade(store)
    relay = RunningRelay(config)
    yield relay
    relay.stop()
    store.dispose()


def offer_round(config_path: Path, *extra: str) -> str:
    folder = config_path.parent
    return ok(
        config_path,
        "match",
        "offer",
        "--mentors",
        str(folder / "mentors.csv"),
        "--mentees",
        str(folder / "mentees.csv"),
        *extra,
    )


def letters_to(sink: Sink, address: str, subject_part: str) -> list[Received]:
    return [r for r in sink.to(address) if subject_part in str(r.message["Subject"])]


def one_letter(sink: Sink, address: str, subject_part: str, count: int = 1) -> Received:
    found = wait_for(
        lambda: (
            len(letters_to(sink, address, subject_part)) >= count
            and letters_to(sink, address, subject_part)
        ),
        what=f"{subject_part!r} to {address}",
    )
    return found[count - 1]


def reply_address(received: Received) -> str:
    return str(received.message["From"].addresses[0].addr_spec)


def body(received: Received) -> str:
    return str(received.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def reply(relay: RunningRelay, sender: str, to: str, text: str, message_id: str = "") -> None:
    answer = mail(sender, to, "Re: your offer", text)
    if message_id:
        answer["Message-ID"] = message_id
    relay.send(answer, sender, to)


def offers(config_path: Path) -> list[dict[str, object]]:
    return list(json.loads(ok(config_path, "offers", "--json")))


def states(config_path: Path) -> list[tuple[object, ...]]:
    return [
        (o["state"], tuple((c["rank"], c["state"]) for c in o["choices"]))  # type: ignore[attr-defined]
        for o in offers(config_path)
    ]


def test_the_mentee_chooses_the_mentor_accepts_and_the_pair_starts_in_the_cohort(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    ok(offer_config, "cohort", "create", "spring", "--start", "2030-01-07")
    said = offer_round(offer_config, "--choices", "3", "--cohort", "spring")
    assert f"{MENTEE}: Ana Ruiz, Raj Patel, Mei Chen" in said and "1 offer sent" in said

    letter = one_letter(sink, MENTEE, "Choose your mentor")
    text = body(letter)
    assert reply_address(letter).startswith("offer-")
    for shown in ("1. Ana Ruiz", "2. Raj Patel", "3. Mei Chen", "Civil engineering", "bridges"):
        assert shown in text
    assert "share interests in bridges and concrete" in text  # why they fit
    # Never an address or an organisation, in any header or the body.
    for hidden in (ANA, RAJ, MEI, "Acme Bridges", "Bolt", "Cog", "mentors.example.org"):
        assert hidden not in letter.data.decode(), hidden

    reply(running, MENTEE, reply_address(letter), "Option 2\n\nOn Monday you wrote:\n> 1. Ana")
    invitation = one_letter(sink, RAJ, "Would you mentor Lea Novak?")
    assert "Civil engineering" in body(invitation) and "bridges, concrete" in body(invitation)
    assert MENTEE not in invitation.data.decode() and "Hill School" not in body(invitation)
    assert not letters_to(sink, ANA, "Would you mentor")
    assert offers(offer_config)[0]["waiting_on"] == "Raj Patel's answer"

    reply(running, RAJ, reply_address(invitation), "Yes, happy to!")
    intro = one_letter(sink, MENTEE, "Meet your mentor")
    one_letter(sink, RAJ, "Meet your mentee")
    (offer,) = offers(offer_config)
    assert offer["state"] == "accepted" and offer["pair"] in body(intro)
    assert states(offer_config) == [
        ("accepted", ((1, "withdrawn"), (2, "accepted"), (3, "withdrawn")))
    ]
    shown = json.loads(ok(offer_config, "cohort", "show", "spring", "--json"))
    assert [(p["pair"], p["mentor"], p["mentee"]) for p in shown["pair_list"]] == [
        (offer["pair"], "Raj Patel", "Lea Novak")
    ]
    # A second round: Lea is paired and sits out; Raj's one place is taken.
    second = offer_round(offer_config)
    assert f"already paired: {MENTEE}" in second and "0 offers sent" in second


def test_a_no_moves_to_the_next_choice_which_accepts(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    reply(running, MENTEE, reply_address(letter), "3")
    invitation = one_letter(sink, MEI, "Would you mentor")
    reply(running, MEI, reply_address(invitation), "Sorry, no: I am away all spring.")
    # The mentee named only 3: the others follow in the letter's order, Ana first.
    second = one_letter(sink, ANA, "Would you mentor")
    assert states(offer_config) == [("open", ((1, "invited"), (2, "listed"), (3, "declined")))]
    reply(running, ANA, reply_address(second), "yes")
    one_letter(sink, MENTEE, "Meet your mentor")
    assert states(offer_config) == [
        ("accepted", ((1, "accepted"), (2, "withdrawn"), (3, "declined")))
    ]
    # Mei, who said no, writes again: politely told it moved on, nothing changes.
    reply(running, MEI, reply_address(invitation), "Actually yes!")
    moved = one_letter(sink, MEI, "Re: your offer")
    assert "moved on" in body(moved)
    assert len(offers(offer_config)) == 1 and not letters_to(sink, MEI, "Meet your")


def test_silence_moves_on_at_the_deadline_and_the_last_leaves_the_mentee_to_a_coordinator(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config, "--choices", "2")
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    assert "1. Ana Ruiz" in body(letter) and "2. Raj Patel" in body(letter)
    assert "3." not in body(letter)
    reply(running, MENTEE, reply_address(letter), "1, 2")
    first = one_letter(sink, ANA, "Would you mentor")

    later = utcnow() + timedelta(days=3, hours=1)
    moved = ok(offer_config, "tick", "--at", later.strftime("%Y-%m-%d %H:%M"))
    assert "1 offers moved on" in moved
    one_letter(sink, RAJ, "Would you mentor")
    assert states(offer_config) == [("open", ((1, "expired"), (2, "invited")))]

    # Before Raj's deadline nothing moves; after it, no choice is left.
    ok(offer_config, "tick", "--at", (later + timedelta(days=2)).strftime("%Y-%m-%d %H:%M"))
    assert states(offer_config)[0][0] == "open"
    ok(offer_config, "tick", "--at", (later + timedelta(days=4)).strftime("%Y-%m-%d %H:%M"))
    assert states(offer_config) == [("declined", ((1, "expired"), (2, "expired")))]
    alert = one_letter(sink, COORDINATOR, "has no mentor choice left")
    assert "Lea Novak" in body(alert) and "choice 1: Ana Ruiz (expired)" in body(alert)
    closed = one_letter(sink, MENTEE, "About your mentor")
    assert "coordinator will be in touch" in body(closed) and "Ana" not in body(closed)
    listed = ok(offer_config, "offers", "--state", "declined")
    assert "Lea Novak" in listed and "none of the mentors offered" in listed
    assert ok(offer_config, "offers", "--state", "open").count("Lea Novak") == 0

    # Ana answers after her deadline: told politely, and no pair is made.
    reply(running, ANA, reply_address(first), "yes")
    assert "moved on" in body(one_letter(sink, ANA, "Re: your offer"))
    assert not letters_to(sink, MENTEE, "Meet your")


def test_an_offer_not_chosen_from_expires_and_is_listed(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    later = utcnow() + timedelta(days=3, minutes=5)
    ok(offer_config, "tick", "--at", later.strftime("%Y-%m-%d %H:%M"))
    (offer,) = offers(offer_config)
    assert offer["state"] == "expired" and offer["reason"] == "no choice within 3d"
    one_letter(sink, COORDINATOR, "has no mentor choice left")
    assert "did not hear which mentor" in body(one_letter(sink, MENTEE, "About your mentor"))
    reply(running, MENTEE, reply_address(letter), "2")
    assert "time ran out" in body(one_letter(sink, MENTEE, "Re: your offer"))
    assert not any("Would you mentor" in str(r.message["Subject"]) for r in sink.received)


def test_strangers_partners_and_forgers_are_answered_like_anyone_and_change_nothing(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    address = reply_address(letter)
    local, _, domain = address.partition("@")
    number, signature = local.removeprefix("offer-").split("-")
    with running.smtp() as client:
        for sender, target in (
            ("stranger@elsewhere.example", address),
            (ANA, address),  # a mentor choosing for the mentee
            (MENTEE, f"offer-{number}-{'0' * 16}@{domain}"),  # forged signature
            (MENTEE, f"offer-{int(number) ^ 1}-{signature}@{domain}"),  # another id
        ):
            refused = client.sendmail(sender, [target], mail(sender, target, "Re", "1").as_bytes())
            assert refused == {}
        # The same answer a stranger gets from any unknown offer address: no oracle.
        unknown = f"offer-12345-{'f' * 16}@{domain}"
        client.mail("stranger@elsewhere.example")
        code_known = client.rcpt(address)
        assert client.rcpt(unknown)[0] == code_known[0] == 250
        client.rset()
    assert states(offer_config) == [("open", ((1, "listed"), (2, "listed"), (3, "listed")))]
    # A marker through the same connection path shows the worker has caught up.
    reply(running, MENTEE, address, "I'd like the second one")
    unclear = one_letter(sink, MENTEE, "Re: your offer")
    assert "number of the mentor" in body(unclear)
    senders = {r.recipients[0] for r in sink.received}
    assert senders == {MENTEE}, senders
    assert states(offer_config)[0][0] == "open"


def test_a_reply_processed_twice_acts_once(offer_config: Path, running: RunningRelay, sink: Sink):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    for _ in range(2):  # as IMAP and SMTP would both deliver it, or a client resending
        reply(running, MENTEE, reply_address(letter), "2", "<choice-1@school.example.net>")
    invitation = one_letter(sink, RAJ, "Would you mentor")
    for _ in range(2):
        reply(running, RAJ, reply_address(invitation), "yes", "<yes-1@mentors.example.org>")
    one_letter(sink, MENTEE, "Meet your mentor")
    one_letter(sink, RAJ, "Meet your mentee")
    pairs = json.loads(ok(offer_config, "pair", "list", "--json"))
    assert len(pairs) == 1
    assert len(letters_to(sink, RAJ, "Would you mentor")) == 1
    assert not letters_to(sink, MENTEE, "Re: your offer") and not letters_to(sink, RAJ, "Re:")


def test_cancel_withdraws_an_offer_and_replies_are_told_it_moved_on(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    (offer,) = offers(offer_config)
    assert ok(offer_config, "offers", "cancel", str(offer["id"]), "--as", "sam") == (
        f"offer {offer['id']} cancelled\n"
    )
    again = run(offer_config, "offers", "cancel", str(offer["id"]))
    assert again.exit_code == 1 and f"no open offer {offer['id']}" in again.output
    bad = run(offer_config, "offers", "cancel", "nonsense")
    assert bad.exit_code == 2 and "not an offer id" in bad.output
    reply(running, MENTEE, reply_address(letter), "1")
    assert "withdrawn" in body(one_letter(sink, MENTEE, "Re: your offer"))
    assert offers(offer_config)[0]["reason"] == "cancelled by sam"


def test_open_offers_hold_places_in_the_next_round(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config, "--choices", "1")
    (offer,) = offers(offer_config)
    assert [c["mentor"] for c in offer["choices"]] == ["Ana Ruiz"]  # type: ignore[index]
    folder = offer_config.parent
    (folder / "mentees.csv").write_text(
        MENTEES_CSV
        + "kai@school.example.net,Kai Berg,Civil engineering,bridges;concrete,career change,"
        "English,Europe/London,Hill School\n"
    )
    second = offer_round(offer_config, "--choices", "3")
    assert "already offered: lea@school.example.net" in second
    # Ana's one place is held by Lea's open offer: Kai is offered the others.
    assert "kai@school.example.net: Raj Patel, Mei Chen" in second


@pytest.mark.postgres
def test_two_relays_answering_yes_at_once_on_postgresql_make_one_pair(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set RELAY_TEST_DATABASE_URL=postgresql+psycopg://...")
    from relay.delivery.bounces import load_bounce_addresses
    from relay.delivery.notices import Notices
    from relay.offers import flow

    offer_round(offer_config)
    letter = one_letter(sink, MENTEE, "Choose your mentor")
    reply(running, MENTEE, reply_address(letter), "1")
    invitation = one_letter(sink, ANA, "Would you mentor")
    config = load_config(offer_config)
    stores = [db.Store(config.database.url), db.Store(config.database.url)]
    addresses = load_bounce_addresses(stores[0], config.relay.domain).offer_addresses()
    desk = flow.Desk(config, Notices(config), addresses)
    choice_id = addresses.item_id(reply_address(invitation))
    assert choice_id is not None
    results: list[bool] = []

    def second_relay() -> None:
        with stores[1].session() as session:  # waits on the first one's lock
            results.append(flow.answer(session, desk, choice_id, True, "<b@x>", utcnow()))

    with stores[0].session() as session:
        results.append(flow.answer(session, desk, choice_id, True, "<a@x>", utcnow()))
        other = threading.Thread(target=second_relay)
        other.start()
        other.join(1.0)
        assert other.is_alive()  # blocked on the offer row until this commit
    other.join(10)
    assert results == [True, False]
    pairs = json.loads(ok(offer_config, "pair", "list", "--json"))
    assert len(pairs) == 1
    for store in stores:
        store.dispose()


def test_offer_expires_is_a_duration_shown_by_check_config(tmp_path: Path, database_url: str):
    good = write_config(tmp_path, database_url, matching='offer_expires = "36h"')
    assert 'offer_expires = "36h"' in ok(good, "check-config")
    for value, said in (('"soon"', "expected a duration"), ('"0s"', "must be more than 0")):
        bad = write_config(tmp_path, database_url, matching=f"offer_expires = {value}")
        result = run(bad, "check-config")
        assert result.exit_code == 1 and "[matching] offer_expires" in result.output, value
        assert said in result.output and "Traceback" not in result.output


def test_someone_registered_in_the_other_role_is_left_out(offer_config: Path):
    ok(offer_config, "db", "upgrade")
    ok(offer_config, "participant", "add", MEI, "--name", "Mei Chen", "--role", "mentee")
    result = run(
        offer_config,
        "match",
        "offer",
        "--mentors",
        str(offer_config.parent / "mentors.csv"),
        "--mentees",
        str(offer_config.parent / "mentees.csv"),
    )
    assert result.exit_code == 0, result.output
    assert f"left out: {MEI} is registered as a mentee" in result.output
    assert f"{MENTEE}: Ana Ruiz, Raj Patel\n" in result.output


def test_a_participant_who_keeps_writing_gets_three_answers_a_day_not_one_per_mail(
    offer_config: Path, running: RunningRelay, sink: Sink
):
    offer_round(offer_config)
    address = reply_address(one_letter(sink, MENTEE, "Choose your mentor"))
    for _ in range(5):
        reply(running, MENTEE, address, "Which one is nicest?")
    one_letter(sink, MENTEE, "Re: your offer", count=3)
    reply(running, MENTEE, address, "2")  # still read and acted on
    one_letter(sink, RAJ, "Would you mentor")
    wait_for(lambda: not _waiting(offer_config), what="the outbox to drain")
    assert len(letters_to(sink, MENTEE, "Re: your offer")) == 3


def _waiting(config_path: Path) -> bool:
    shown = ok(config_path, "queue", "--json")
    counts = json.loads(shown)["counts"]
    return bool(counts.get("queued") or counts.get("sending") or counts.get("deferred"))


def test_the_daemon_itself_moves_offers_on_when_their_time_is_up(
    tmp_path: Path, database_url: str, sink: Sink
):
    path = write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}\ntimeout = "5s"',
        moderation=f'moderators = ["{COORDINATOR}"]',
        programme='tick_interval = "1s"',
        matching='offer_expires = "2s"',
    )
    (tmp_path / "mentors.csv").write_text(MENTORS_CSV)
    (tmp_path / "mentees.csv").write_text(MENTEES_CSV)
    config = load_config(path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    relay = RunningRelay(config)
    try:
        offer_round(path)
        address = reply_address(one_letter(sink, MENTEE, "Choose your mentor"))
        reply(relay, MENTEE, address, "3, 2")
        # Nobody answers: Mei, then Raj, then Ana are invited in turn by the daemon's
        # own tick, and the coordinator hears that Lea has no choice left.
        for mentor in (MEI, RAJ, ANA):
            one_letter(sink, mentor, "Would you mentor")
        one_letter(sink, COORDINATOR, "has no mentor choice left")
    finally:
        relay.stop()
        store.dispose()
    assert states(path) == [("declined", ((1, "expired"), (2, "expired"), (3, "expired")))]


def test_someone_in_an_open_offer_is_removed_only_after_it_is_cancelled(offer_config: Path):
    ok(offer_config, "db", "upgrade")
    offer_round(offer_config)
    (offer,) = offers(offer_config)
    for person in (MENTEE, RAJ):
        refused = run(offer_config, "participant", "remove", person)
        assert refused.exit_code == 1, refused.output
        assert f"named in open offer {offer['id']}" in refused.output
    ok(offer_config, "offers", "cancel", str(offer["id"]))
    ok(offer_config, "participant", "remove", RAJ)
    assert [c["mentor"] for c in offers(offer_config)[0]["choices"]] == ["Ana Ruiz", "Mei Chen"]  # type: ignore[index]
    ok(offer_config, "participant", "remove", MENTEE)
    assert offers(offer_config) == []
