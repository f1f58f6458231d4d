"""Participants and pairs over time, transcripts for people and records, output for scripts.

Mail enters through the real intake (as `relay serve` would hand it over);
everything else is the `relay` command line on a real database.
"""

from __future__ import annotations

import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from relay.cli import cli
from relay.config import load_config
from relay.intake import Incoming, Intake
from relay.store import db
from relay.store.models import Message, OutboxEntry
from tests.conftest import wire, write_config

ANA = "ana.real@mentors.example.org"
BEN = "ben.real@school.example.net"
PHONE = "Text me on 07700 900123 if you like."


class Programme:
    def __init__(self, tmp_path: Path, database_url: str, rules: str | None = None) -> None:
        sections = {} if rules is None else {"rules": rules}
        self.path = write_config(tmp_path, database_url, **sections)
        self.folder = tmp_path
        assert self.run("db", "upgrade").exit_code == 0

    def run(self, *args: str) -> Result:
        result = CliRunner().invoke(cli, ["-c", str(self.path), *args], catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))

    def pair(self) -> str:
        self.ok("participant", "add", ANA, "--name", "Ana Ruiz", "--role", "mentor")
        self.ok("participant", "add", BEN, "--name", "Ben", "--role", "mentee")
        return self.ok("pair", "create", "--mentor", ANA, "--mentee", BEN).strip()

    def send(self, sender: str, to: str, subject: str, body: str, attach: bool = False) -> int:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, to, subject
        message.set_content(body)
        if attach:
            message.add_attachment(b"%PDF-1.4 notes", "application", "pdf", filename="notes.pdf")
        config = load_config(self.path)
        store = db.open_store(config.database.url)
        try:
            outcome = Intake(store, config).accept(Incoming(wire(message), sender, [to], "smtp"))
        finally:
            store.dispose()
        return outcome.message_ids[0] if outcome.message_ids else 0


@pytest.fixture
def programme(tmp_path: Path, database_url: str) -> Programme:
    return Programme(tmp_path, database_url)


def test_participant_show_edit_addresses_and_remove(programme: Programme):
    programme.ok(
        "participant", "add", "cy@x.example", "--name", "Cy", "--role", "mentor",
        "--also", "cy@home.example", "--time-zone", "Europe/London",
    )  # fmt: skip
    shown = programme.json("participant", "show", "CY@home.example")
    assert shown == {
        "email": "cy@x.example",
        "name": "Cy",
        "role": "mentor",
        "addresses": ["cy@x.example", "cy@home.example"],
        "time_zone": "Europe/London",
        "watched": False,
        "pair_count": 0,
        "pairs": [],
        "created_at": shown["created_at"],
    }
    assert "time zone:  Europe/London" in programme.ok("participant", "show", "cy@x.example")

    edited = programme.ok(
        "participant", "edit", "cy@x.example", "--name", "Cy Young", "--role", "mentee",
        "--time-zone", "Asia/Tokyo",
    )  # fmt: skip
    assert edited.strip() == "cy@x.example: mentee Cy Young, time zone Asia/Tokyo"
    programme.ok("participant", "address", "add", "cy@x.example", "Cy@Work.example")
    assert programme.ok("participant", "address", "remove", "cy@x.example", "cy@home.example")
    assert programme.json("participant", "show", "cy@x.example")["addresses"] == [
        "cy@x.example",
        "cy@work.example",
    ]
    removed = programme.ok("participant", "remove", "cy@work.example")
    assert removed.strip() == "removed mentee Cy Young <cy@x.example>"
    assert programme.json("participant", "list") == []


def test_pair_show_watch_list_and_json(programme: Programme):
    address = programme.pair()
    assert programme.send(ANA, address, "Hello", "Hi Ben") > 0
    assert programme.send(BEN, address, "Re: Hello", "Hi Ana") > 0
    assert programme.send(ANA, address, "Week 2", "How was it?") > 0

    shown = programme.json("pair", "show", address)
    assert shown["address"] == address and shown["state"] == "active"
    assert shown["mentor"] == {"name": "Ana Ruiz", "email": ANA}
    assert shown["messages"] == {"total": 3, "by_state": {"queued": 3}}
    assert shown["mentor_to_mentee"]["messages"] == 2
    assert shown["mentor_to_mentee"]["last"]["subject"] == "Week 2"
    assert shown["mentee_to_mentor"]["last"]["subject"] == "Re: Hello"
    text = programme.ok("pair", "show", address)
    assert "messages:  3 (3 queued)" in text
    assert "mentee -> mentor: 1, last" in text

    assert programme.json("pair", "list")[0]["address"] == address
    assert [p["pair_count"] for p in programme.json("participant", "list")] == [1, 1]
    logged = programme.json("log", address)
    assert [m["state"] for m in logged["messages"]] == ["queued"] * 3

    assert programme.ok("watch").strip() == "(none)"
    programme.ok("watch", BEN)
    programme.ok("watch", address)
    watched = programme.json("watch")
    assert watched["participants"] == [{"email": BEN, "name": "Ben", "role": "mentee"}]
    assert [p["address"] for p in watched["pairs"]] == [address]
    listed = programme.ok("watch")
    assert "participant  " + BEN in listed and "pair         " + address in listed
    assert programme.json("watch", BEN, "--off") == {
        "who": BEN,
        "kind": "participant",
        "watched": False,
    }


def test_show_and_log_use_one_word_for_a_state(programme: Programme):
    address = programme.pair()
    message_id = programme.send(ANA, address, "Hello", "Hi")
    programme.ok("watch", address)
    held_id = programme.send(ANA, address, "Again", "Hi")
    log = programme.ok("log", address)
    assert log.splitlines()[0].split()[-1] == "STATE"
    for shown_id, word in ((message_id, "queued"), (held_id, "held")):
        assert programme.ok("show", str(shown_id)).startswith(f"Message {shown_id}: {word},")
        row = next(line for line in log.splitlines() if line.startswith(f"{shown_id} "))
        assert row.split()[-1] == word


def test_full_transcript_and_exports(tmp_path: Path, database_url: str):
    programme = Programme(tmp_path, database_url, rules="")  # the shipped rules: new pairs held
    address = programme.pair()
    first = programme.send(ANA, address, "Hello", f"Hi Ben! {PHONE}\nMy mail: {ANA}")
    second = programme.send(BEN, address, "Notes", "Here are my notes", attach=True)
    third = programme.send(ANA, address, "Week 2", "How was it?")
    programme.ok("approve", str(first), "--redact", "--as", "carol")
    programme.ok("reject", str(second), "--reason", "No files yet, please.", "--as", "dan")

    full = programme.ok("log", address, "--full")
    assert ANA not in full and BEN not in full
    assert f"My mail: {address}" in full
    assert "From: Ana Ruiz (mentor)" in full and "To: Ben (mentee)" in full
    assert "with the flagged text removed" in full and ">>>07700 900123<<<" in full
    assert "Held, then rejected by dan at" in full and "No files yet, please." in full
    assert "notes.pdf (application/pdf," in full
    assert f"Message {third}," in full and "Held: waiting for a moderator" in full
    with_addresses = programme.ok("log", address, "--full", "--with-addresses")
    assert f"My mail: {ANA}" in with_addresses and f"Ana Ruiz (mentor) <{ANA}>" in with_addresses

    box_path = tmp_path / "pair.mbox"
    said = programme.ok("export", address, "--mbox", str(box_path))
    assert said.strip() == f"3 messages written to {box_path}"
    exported = list(mailbox.mbox(box_path))
    assert [m["Subject"] for m in exported] == ["Hello", "Notes", "Week 2"]
    assert ANA.encode() not in box_path.read_bytes() and BEN.encode() not in box_path.read_bytes()
    assert exported[1]["X-Relay-Transcript"] == f"message {second} from the mentee, rejected"

    folder = tmp_path / "records"
    programme.ok("export", address, "--eml", str(folder), "--with-addresses")
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"message-{n:06d}.eml" for n in (first, second, third)]
    assert f"From: {ANA}".encode() in files[0].read_bytes()


def test_refusal_names_only_what_refused_and_spends_no_new_pair_slot(
    tmp_path: Path, database_url: str
):
    programme = Programme(tmp_path, database_url, rules='[rules.actions]\ncontact = "reject"')
    address = programme.pair()
    programme.send(ANA, address, "Call me", PHONE)
    config = load_config(programme.path)
    store = db.Store(config.database.url)
    try:
        with store.session() as session:
            refused = session.scalars(
                select(OutboxEntry).where(OutboxEntry.notice == "refused")
            ).one()
            text = refused.content.decode()
            assert "phone number" in text
            assert "of the first" not in text  # the new-pair hold is no reason for a refusal
        programme.send(ANA, address, "Hello", "Plain hello")
        with store.session() as session:
            rows = session.scalars(select(Message).order_by(Message.id)).all()
            assert [row.status.value for row in rows] == ["rejected", "held"]
            assert "message 1 of the first 2 from the mentor" in rows[1].hits
    finally:
        store.dispose()


def test_match_apply_counts_read_correctly(programme: Programme):
    proposals = programme.folder / "proposals.csv"
    proposals.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name,score,reasons\n"
        f"{BEN},Ben,{ANA},Ana,0.9,field\n"
    )
    applied = programme.run("match", "apply", str(proposals))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines()[-1] == "1 pair created"
