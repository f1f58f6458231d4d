"""Moderation end to end: held mail waits for a person, who decides from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.config import Config, load_config
from relay.store import db
from relay.store.models import Message, MessageStatus, ModerationAction, OutboxEntry
from tests.conftest import PairInfo, RunningRelay, Sink, mail, make_pair, wait_for, write_config

PHONE_BODY = "Great chat today! Text me on 07700 900123 if you want to talk more."


@pytest.fixture
def moderated_config_path(tmp_path: Path, database_url: str, sink: Sink) -> Path:
    """The shipped rule defaults (new pairs held too), a moderator, delivery to the sink."""
    return write_config(
        tmp_path,
        database_url,
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}',
        moderation='moderators = ["coordinator@programme.example"]\nalert_interval = "1h"',
        rules="",
    )


@pytest.fixture
def mconfig(moderated_config_path: Path) -> Config:
    return load_config(moderated_config_path)


@pytest.fixture
def mstore(mconfig: Config):
    store = db.Store(mconfig.database.url)
    db.upgrade(store)
    yield store
    store.dispose()


@pytest.fixture
def mpair(mstore: db.Store, mconfig: Config) -> PairInfo:
    return make_pair(mstore, mconfig)


@pytest.fixture
def mrelay(mconfig: Config, mstore: db.Store):
    running = RunningRelay(mconfig)
    yield running
    running.stop()


@pytest.fixture
def moderator(moderated_config_path: Path):
    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, ["-c", str(moderated_config_path), *args], input=input)

    return run


def statuses(store: db.Store) -> list[MessageStatus]:
    with store.session() as session:
        return [m.status for m in session.scalars(select(Message).order_by(Message.id))]


def forwards_to(sink: Sink, address: str) -> list:
    return [r for r in sink.to(address) if "Auto-Submitted" not in r.message]


def notices_to(sink: Sink, address: str, subject_part: str) -> list:
    return [
        r
        for r in sink.to(address)
        if "Auto-Submitted" in r.message and subject_part in r.message["Subject"]
    ]


def test_phone_number_is_held_told_listed_and_approved(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderator
):
    """The issue's 'done when', with the shipped rule defaults."""
    mrelay.send(
        mail(mpair.mentor, mpair.address, "Next week", PHONE_BODY), mpair.mentor, mpair.address
    )
    assert statuses(mstore) == [MessageStatus.HELD]

    held_notice = wait_for(lambda: notices_to(sink, mpair.mentor, "waiting for a coordinator"))[0]
    assert mpair.mentee not in held_notice.data.decode()
    assert forwards_to(sink, mpair.mentee) == []

    listed = moderator("held")
    assert listed.exit_code == 0
    row = listed.output.splitlines()[1]
    assert "Next week" in row and "mentor" in row and "phone number" in row

    shown = moderator("show", "1", "--no-color")
    assert ">>>07700 900123<<<" in shown.output
    assert "contact" in shown.output
    assert f"To: Ben Mentee <{mpair.mentee}>" in shown.output

    approved = moderator("approve", "1", "--as", "carol")
    assert approved.exit_code == 0 and "approved" in approved.output
    forwarded = wait_for(lambda: forwards_to(sink, mpair.mentee), timeout=10)
    assert "07700 900123" in forwarded[0].message.get_content()

    trail = moderator("audit")
    assert "carol" in trail.output and "approve" in trail.output
    assert statuses(mstore) == [MessageStatus.QUEUED]


def test_new_pair_first_messages_are_held_then_pass(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store
):
    for number in range(3):
        mrelay.send(
            mail(mpair.mentor, mpair.address, f"hello {number}"), mpair.mentor, mpair.address
        )
    assert statuses(mstore) == [MessageStatus.HELD, MessageStatus.HELD, MessageStatus.QUEUED]


def test_reject_tells_the_sender_with_the_reason(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderator
):
    mrelay.send(mail(mpair.mentee, mpair.address, "hi", PHONE_BODY), mpair.mentee, mpair.address)
    result = moderator(
        "reject", "1", "--reason", "Please keep contact on the relay.", "--as", "dan"
    )
    assert result.exit_code == 0
    notice = wait_for(lambda: notices_to(sink, mpair.mentee, "Not passed on"))[0]
    text = notice.message.get_content()
    assert "Please keep contact on the relay." in text
    assert mpair.mentor not in notice.data.decode()
    assert forwards_to(sink, mpair.mentor) == []
    assert statuses(mstore) == [MessageStatus.REJECTED]


def test_discard_sends_nothing(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderator
):
    mrelay.send(mail(mpair.mentor, mpair.address, "hi", PHONE_BODY), mpair.mentor, mpair.address)
    wait_for(lambda: notices_to(sink, mpair.mentor, "waiting"))

    def to_participants() -> int:
        return len(sink.to(mpair.mentor)) + len(sink.to(mpair.mentee))

    before = to_participants()
    assert moderator("discard", "1").exit_code == 0
    with mstore.session() as session:
        assert session.scalars(select(OutboxEntry).where(OutboxEntry.message_id == 1)).all() != []
        pending = session.scalars(select(OutboxEntry).where(OutboxEntry.kind == "forward")).all()
    assert pending == []
    assert statuses(mstore) == [MessageStatus.DISCARDED]
    mrelay.running.worker.wake()
    assert to_participants() == before


def test_approve_with_redaction(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderator
):
    mrelay.send(mail(mpair.mentor, mpair.address, "hi", PHONE_BODY), mpair.mentor, mpair.address)
    assert moderator("approve", "1", "--redact").exit_code == 0
    forwarded = wait_for(lambda: forwards_to(sink, mpair.mentee))[0].message.get_content()
    assert "07700" not in forwarded
    assert "Text me on [removed by moderator]" in forwarded or "[removed by moderator]" in forwarded
    with mstore.session() as session:
        action = session.scalars(select(ModerationAction)).one()
        assert action.redacted and action.verdict.value == "approve"
        assert b"07700 900123" in session.get(Message, 1).raw  # the transcript keeps the original


def test_second_decision_is_told_who_decided(mrelay: RunningRelay, mpair: PairInfo, moderator):
    mrelay.send(mail(mpair.mentor, mpair.address, "hi", PHONE_BODY), mpair.mentor, mpair.address)
    assert moderator("approve", "1", "--as", "carol").exit_code == 0
    again = moderator("reject", "1", "--reason", "no", "--as", "dan")
    assert again.exit_code == 1
    assert "already approved by carol" in again.output


def test_two_concurrent_approvals_deliver_once(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderated_config_path: Path
):
    """Two moderators at two terminals: two processes racing on one database."""
    mrelay.send(mail(mpair.mentor, mpair.address, "race", PHONE_BODY), mpair.mentor, mpair.address)
    command = [sys.executable, "-m", "relay", "-c", str(moderated_config_path), "approve", "1"]
    racers = [
        subprocess.Popen(
            [*command, "--as", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for name in ("carol", "dan")
    ]
    outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    assert sorted(racer.returncode for racer in racers) == [0, 1], outputs
    assert sum("already approved by" in out for out in outputs) == 1, outputs
    assert not any("locked" in out for out in outputs), outputs
    wait_for(lambda: forwards_to(sink, mpair.mentee))
    with mstore.session() as session:
        forwards = session.scalars(select(OutboxEntry).where(OutboxEntry.kind == "forward")).all()
        assert len(forwards) == 1
        assert len(session.scalars(select(ModerationAction)).all()) == 1


def test_review_loop_through_cli_input(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store, moderator
):
    for subject in ("one", "two", "three", "four"):
        mrelay.send(
            mail(mpair.mentor, mpair.address, subject, PHONE_BODY), mpair.mentor, mpair.address
        )
    result = moderator("review", "--as", "erin", input="a\nr\nNot appropriate\ns\nd\n")
    assert result.exit_code == 0, result.output
    assert "=== 1 of 4 ===" in result.output and ">>>07700 900123<<<" in result.output
    assert statuses(mstore) == [
        MessageStatus.QUEUED,
        MessageStatus.REJECTED,
        MessageStatus.HELD,
        MessageStatus.DISCARDED,
    ]
    with mstore.session() as session:
        actions = session.scalars(select(ModerationAction).order_by(ModerationAction.id)).all()
        assert [(a.moderator, a.verdict.value, a.reason) for a in actions] == [
            ("erin", "approve", ""),
            ("erin", "reject", "Not appropriate"),
            ("erin", "discard", ""),
        ]


def test_held_filters_and_json(mrelay: RunningRelay, mpair: PairInfo, moderator):
    mrelay.send(
        mail(mpair.mentor, mpair.address, "link", "See https://evil.example/x"),
        mpair.mentor,
        mpair.address,
    )
    mrelay.send(mail(mpair.mentor, mpair.address, "phone", PHONE_BODY), mpair.mentor, mpair.address)
    items = json.loads(moderator("held", "--json").output)
    assert [i["subject"] for i in items] == ["link", "phone"]
    assert "links" in items[0]["rules"] and "contact" in items[1]["rules"]
    only_links = json.loads(moderator("held", "--json", "--rule", "links").output)
    assert [i["subject"] for i in only_links] == ["link"]
    by_pair = json.loads(moderator("held", "--json", "--pair", mpair.address).output)
    assert len(by_pair) == 2


def test_watch_holds_everything(mrelay: RunningRelay, mpair: PairInfo, mstore: db.Store, moderator):
    for number in range(2):  # get past the new-pair rule
        mrelay.send(mail(mpair.mentee, mpair.address, f"n{number}"), mpair.mentee, mpair.address)
    assert moderator("watch", mpair.mentee).exit_code == 0
    mrelay.send(mail(mpair.mentee, mpair.address, "watched"), mpair.mentee, mpair.address)
    assert moderator("watch", mpair.mentee, "--off").exit_code == 0
    mrelay.send(mail(mpair.mentee, mpair.address, "free"), mpair.mentee, mpair.address)
    assert statuses(mstore)[2:] == [MessageStatus.HELD, MessageStatus.QUEUED]


def test_autoreply_is_discarded_without_notice(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store
):
    wait_for(lambda: len(sink.received) >= 2)  # the introductions
    out_of_office = mail(
        mpair.mentor, mpair.address, "Out of office", Auto_Submitted="auto-replied"
    )
    mrelay.send(out_of_office, mpair.mentor, mpair.address)
    assert statuses(mstore) == [MessageStatus.DISCARDED]
    with mstore.session() as session:
        assert session.scalars(select(OutboxEntry).where(OutboxEntry.message_id == 1)).all() == []


def test_moderators_get_one_alert_listing_what_waits(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo
):
    mrelay.send(mail(mpair.mentor, mpair.address, "first", PHONE_BODY), mpair.mentor, mpair.address)
    mrelay.send(
        mail(mpair.mentor, mpair.address, "second", PHONE_BODY), mpair.mentor, mpair.address
    )
    from relay.delivery.notices import Notices
    from relay.moderation import decisions as moderation

    with mrelay.running.store.session() as session:
        assert moderation.queue_moderator_alert(session, mrelay.config, Notices(mrelay.config))
    with mrelay.running.store.session() as session:  # batched: not again within the interval
        assert not moderation.queue_moderator_alert(session, mrelay.config, Notices(mrelay.config))
    mrelay.running.worker.wake()
    alerts = wait_for(lambda: sink.to("coordinator@programme.example"))
    text = alerts[0].message.get_content()
    assert "first" in text and "second" in text and "phone number" in text
    assert len(sink.to("coordinator@programme.example")) == 1


def test_held_notices_are_limited_per_sender_and_day(
    mrelay: RunningRelay, sink: Sink, mpair: PairInfo, mstore: db.Store
):
    for number in range(5):
        mrelay.send(
            mail(mpair.mentor, mpair.address, f"n{number}", PHONE_BODY), mpair.mentor, mpair.address
        )
    assert statuses(mstore) == [MessageStatus.HELD] * 5
    with mstore.session() as session:
        notices = session.scalars(select(OutboxEntry).where(OutboxEntry.notice == "held")).all()
    assert len(notices) == 3  # [moderation] held_notices_per_day
    assert {row.recipient for row in notices} == {mpair.mentor}
