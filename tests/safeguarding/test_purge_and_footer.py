"""Purge keeps what a concern needs; the footer tells participants their mail is read."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from relay.outbound.footer import add_footer
from relay.settings import DEFAULT_FOOTER
from relay.store import registry
from relay.store.states import PairStatus, utcnow
from tests.conftest import MENTEE, MENTOR, Sink, mail, make_pair, wait_for
from tests.safeguarding.helpers import messages, run


def test_purge_keeps_pairs_under_live_concerns_and_every_concern_linked_message(
    configured, sink: Sink, tmp_path: Path
):
    relay, pair, store = configured()
    other = make_pair(
        store,
        relay.config,
        ("cat.real@mentors.example.org", "Cat"),
        ("dan.real@school.example.net", "Dan"),
    )
    config = tmp_path / "relay.toml"
    relay.send(mail(MENTOR[0], pair.address, "One", "hello"), MENTOR[0], pair.address)
    relay.send(mail(MENTOR[0], pair.address, "Two", "our little secret"), MENTOR[0], pair.address)
    relay.send(mail(MENTEE[0], pair.address, "Three", "hi"), MENTEE[0], pair.address)
    relay.send(
        mail("cat.real@mentors.example.org", other.address, "Four", "hi"),
        "cat.real@mentors.example.org",
        other.address,
    )
    assert run(config, "concern", "open", "--pair", other.address, "--summary", "x").exit_code == 0
    for address in (pair.address, other.address):
        with store.session() as session:
            found = registry.find_pair(session, address, "relay.test")
            found.status, found.ended_at = PairStatus.ENDED, utcnow() - timedelta(days=400)
    # The escalation concern (message 2) is closed: its pair may go, its message may not.
    assert (
        run(
            config, "concern", "update", "1", "--status", "closed", "--note", "ok", "--as", "D"
        ).exit_code
        == 0
    )
    first, escalated = messages(store)[0], messages(store)[1]
    size = sum(
        m.size for m in messages(store) if m.pair_id == first.pair_id and m.id != escalated.id
    )

    dry = run(config, "purge", "--older-than", "365d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        f"would purge 2 messages ({size} bytes) of 1 pair that ended before "
        + (utcnow() - timedelta(days=365)).strftime("%Y-%m-%d"),
        f"kept pair {other.address}: it has a live concern (2)",
        f"kept message {escalated.id}: linked to concern 1",
    ]
    done = run(config, "purge", "--older-than", "365d")
    assert done.output.startswith("purged 2 messages")
    kept = {m.subject for m in messages(store) if m.purged_at is None}
    assert kept == {"Two", "Four"}


def test_the_footer_is_on_every_forward_by_default(configured, sink: Sink):
    relay, pair, _store = configured(safeguarding="")
    relay.send(mail(MENTOR[0], pair.address, "Hi", "How are you?"), MENTOR[0], pair.address)
    [forward] = wait_for(lambda: [m for m in sink.to(MENTEE[0]) if m.message["Subject"] == "Hi"])
    body = forward.message.get_content().replace("\r\n", "\n")
    assert body == f"How are you?\n\n-- \n{DEFAULT_FOOTER}\n"


def test_footer_on_plain_and_html_parts_never_attachments():
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("plain text")
    message.add_alternative("<html><body><p>rich</p></body></html>", subtype="html")
    message.add_attachment("notes", filename="notes.txt")
    add_footer(message, "Read by <coordinators>")
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and plain.get_content().endswith("-- \nRead by <coordinators>\n")
    assert rich is not None
    assert "<p>rich</p><p style" in rich.get_content()
    assert "Read by &lt;coordinators&gt;</p></body>" in rich.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() == "notes\n"
    assert "MIME-Version" not in plain


def test_an_empty_footer_turns_it_off():
    message = EmailMessage()
    message.set_content("just this")
    add_footer(message, "  ")
    assert message.get_content() == "just this\n"
