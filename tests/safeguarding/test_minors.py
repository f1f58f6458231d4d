"""Minors, consent and background checks: the gates refuse clearly; guardians get clean copies."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from relay.config import load_config
from relay.delivery.notices import Notice, Notices
from relay.safeguarding import tick
from relay.store import db, registry
from relay.store.states import PairStatus
from tests.conftest import MENTOR, Sink, mail, wait_for, write_config
from tests.safeguarding.helpers import LEAD, outbox, run

KID = "kim.real@pupils.example.net"
GUARDIAN = "parent.real@home.example.com"
ADULT_MENTEE = "lee.real@college.example.net"
OTHER_MENTOR = "max.real@mentors.example.org"


def schema(config: Path) -> Path:
    """A relay.toml whose database is at head (PostgreSQL is never created by a command)."""
    store = db.Store(load_config(config).database.url)
    db.upgrade(store)
    store.dispose()
    return config


def people(config: Path, *, check: str | None = None) -> None:
    extra = ["--checked-until", check] if check else []
    for args in (
        [MENTOR[0], "--name", "Ana Mentor", "--role", "mentor", *extra],
        [KID, "--name", "Kim", "--role", "mentee", "--minor", "--guardian", GUARDIAN],
    ):
        added = run(config, "participant", "add", *args)
        assert added.exit_code == 0, added.output


def test_a_minor_needs_recorded_consent_before_pairing(tmp_path: Path, database_url: str):
    config = schema(write_config(tmp_path, database_url))
    people(config)
    refused = run(config, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID)
    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: no recorded consent for {KID} (a minor)"
    consent = run(
        config, "participant", "consent", KID, "--by", "Pat (mother)", "--date", "2026-09-01"
    )
    assert consent.output.strip() == f"consent for {KID} recorded: Pat (mother), 2026-09-01"
    created = run(config, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID)
    assert created.exit_code == 0, created.output
    bad_date = run(config, "participant", "consent", KID, "--by", "Pat", "--date", "1 Sept")
    assert bad_date.exit_code == 1 and "expected a date like" in bad_date.output
    adult = run(config, "participant", "add", ADULT_MENTEE, "--name", "Lee", "--role", "mentee")
    assert adult.exit_code == 0
    not_minor = run(config, "participant", "consent", ADULT_MENTEE, "--by", "x")
    assert not_minor.exit_code == 1 and "is not recorded as a minor" in not_minor.output


def test_with_require_check_a_mentor_needs_a_current_check(tmp_path: Path, database_url: str):
    config = schema(
        write_config(tmp_path, database_url, safeguarding='require_check = true\nfooter = ""')
    )
    people(config, check=(date.today() - timedelta(days=1)).isoformat())
    run(config, "participant", "consent", KID, "--by", "Pat")
    refused = run(config, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID)
    assert refused.exit_code == 1
    assert f"no current background check for {MENTOR[0]} (expired on" in refused.output
    renewed = (date.today() + timedelta(days=400)).isoformat()
    assert run(config, "participant", "check", MENTOR[0], "--until", renewed).exit_code == 0
    assert run(config, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID).exit_code == 0
    listed = run(config, "participant", "safeguarding", "--json")
    standings = {i["email"]: i["standing"] for i in json.loads(listed.output)}
    assert standings == {MENTOR[0]: "check current", KID: "consent recorded"}
    unchecked = run(config, "participant", "add", OTHER_MENTOR, "--name", "Max", "--role", "mentor")
    assert unchecked.exit_code == 0
    assert (
        run(
            config, "participant", "add", ADULT_MENTEE, "--name", "Lee", "--role", "mentee"
        ).exit_code
        == 0
    )
    none = run(config, "pair", "create", "--mentor", OTHER_MENTOR, "--mentee", ADULT_MENTEE)
    assert none.exit_code == 1 and "(none recorded)" in none.output
    table = run(config, "participant", "safeguarding").output
    assert f"{OTHER_MENTOR}  mentor" in table and "no check recorded (cannot be paired)" in table
    assert ADULT_MENTEE not in table  # adults who are not mentors have nothing to record


def test_match_apply_reports_refused_rows_and_creates_the_rest(tmp_path: Path, database_url: str):
    config = schema(write_config(tmp_path, database_url))
    people(config)
    proposals = tmp_path / "proposals.csv"
    proposals.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name\n"
        f"{KID},Kim,{MENTOR[0]},Ana Mentor\n"
        f"{ADULT_MENTEE},Lee,{OTHER_MENTOR},Max\n"
    )
    applied = run(config, "match", "apply", str(proposals))
    assert applied.exit_code == 0, applied.output
    lines = applied.output.splitlines()
    assert f"{OTHER_MENTOR} -> {ADULT_MENTEE}" in lines[0]
    assert lines[1] == f"not created: {proposals} line 2: no recorded consent for {KID} (a minor)"
    assert lines[2] == "1 pair created, 1 refused"


def test_expiring_and_expired_checks_warn_leads_once_and_pause_until_renewed(
    tmp_path: Path, database_url: str, sink: Sink
):
    config_path = schema(
        write_config(
            tmp_path, database_url, safeguarding=f'leads = ["{LEAD}"]\nrequire_check = true'
        )
    )
    soon = date.today() + timedelta(days=10)
    people(config_path, check=soon.isoformat())
    run(config_path, "participant", "consent", KID, "--by", "Pat")
    address = run(
        config_path, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID
    ).output.strip()
    config = load_config(config_path)
    store = db.Store(config.database.url)
    notices = Notices(config)
    try:
        with store.session() as session:
            assert tick.run(session, config, notices) is True  # the 30-day warning
        with store.session() as session:
            assert tick.run(session, config, notices) is False  # once
        with store.session() as session:
            registry.find_participant(session, MENTOR[0]).checked_until = date.today() - timedelta(
                days=1
            )
        with store.session() as session:
            assert tick.run(session, config, notices) is True  # expired: paused, leads told
            pair = registry.find_pair(session, address, "relay.test")
            assert (pair.status, pair.pause_reason) == (PairStatus.PAUSED, "check_expired")
        with store.session() as session:
            assert tick.run(session, config, notices) is False
        warnings = [r for r in outbox(store) if r.notice == Notice.CHECK_EXPIRING]
        assert [r.recipient for r in warnings] == [LEAD, LEAD]
        assert address.encode() in warnings[1].content and b"expired" in warnings[1].content
        renewed = run(config_path, "participant", "check", MENTOR[0], "--until", "2099-01-01")
        assert renewed.output.splitlines() == [
            f"background check of {MENTOR[0]} recorded until 2099-01-01",
            f"resumed {address}",
        ]
        with store.session() as session:
            assert registry.find_pair(session, address, "relay.test").status is PairStatus.ACTIVE
    finally:
        store.dispose()


def test_guardian_copies_carry_no_real_address(configured, sink: Sink, tmp_path: Path):
    relay, pair, _store = configured(safeguarding="guardian_copies = true")
    config = tmp_path / "relay.toml"
    assert (
        run(
            config,
            "participant",
            "add",
            KID,
            "--name",
            "Kim",
            "--role",
            "mentee",
            "--minor",
            "--guardian",
            GUARDIAN,
        ).exit_code
        == 0
    )
    run(config, "participant", "consent", KID, "--by", "Pat")
    kid_pair = run(config, "pair", "create", "--mentor", MENTOR[0], "--mentee", KID).output.strip()
    relay.send(
        mail(
            f"Ana Mentor <{MENTOR[0]}>",
            kid_pair,
            "Revision",
            f"Hi Kim, chapter 3 next.\n\nAna <{MENTOR[0]}>",
        ),
        MENTOR[0],
        kid_pair,
    )
    relay.send(mail(f"Kim <{KID}>", kid_pair, "Re: Revision", "Thanks! Kim"), KID, kid_pair)
    relay.send(mail(MENTOR[0], pair.address, "Adult pair", "Not copied"), MENTOR[0], pair.address)
    copies = wait_for(lambda: len(sink.to(GUARDIAN)) == 2 and sink.to(GUARDIAN), what="two copies")
    wait_for(lambda: sink.to(pair.mentee)[1:], what="the adult pair's mail")
    subjects = sorted(str(c.message["Subject"]) for c in copies)
    assert subjects == [
        "[copy for the guardian of Kim] Re: Revision",
        "[copy for the guardian of Kim] Revision",
    ]
    for copy in copies:
        assert MENTOR[0].encode() not in copy.data and KID.encode() not in copy.data
        assert copy.message["From"].addresses[0].addr_spec == kid_pair
        assert copy.message["To"].addresses[0].addr_spec == GUARDIAN
        assert "coordinators to keep everyone safe" in copy.message.get_body().get_content()
    assert len(sink.to(GUARDIAN)) == 2  # nothing of the adult pair
