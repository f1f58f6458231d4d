"""The relay between two real Postfix hops: client -> Postfix -> relay -> Postfix -> providers.

One private Postfix instance per inbound protocol (SMTP to the relay's port,
LMTP over a Unix socket) for the whole session, configured with exactly what
`relay setup postfix` prints plus the test-only settings in
tests/postfix_instance.py. Postfix relays everything outside the relay domain
to one aiosmtpd sink standing in for the participants' providers; the relay's
smarthost is that same Postfix. The front Postfix stands in for a DMARC
checker too: an smtpd access map PREPENDs Authentication-Results (above its
own Received header, where a real checker puts them) saying dmarc=fail for
envelope senders at spoofed.example and dmarc=pass for everyone else.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.config import load_config
from relay.ops import postfix as postfix_snippets
from relay.store import db
from relay.store.models import DeliveryStatus, Message, MessageStatus, OutboxEntry, OutboxKind
from tests.conftest import (
    PairInfo,
    RunningRelay,
    Sink,
    SinkHandler,
    free_port,
    mail,
    make_pair,
    wait_for,
    wire,
    write_config,
)
from tests.postfix_instance import MX_HOSTNAME, PostfixInstance, make_folder
from tests.tlskeys import rsa_key, write_private_key

MODES = ["smtp", "lmtp"]
SLOW = 45.0  # Postfix retries a failed destination after a second or two; leave room


@dataclass
class ProviderHandler(SinkHandler):
    """The participants' providers: takes everything, except mailboxes told to refuse."""

    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 <" + address + ">: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


@dataclass
class Front:
    """One Postfix around the relay, and the relay.toml sections it was set up for."""

    mode: str
    postfix: PostfixInstance
    relay_sections: dict[str, str]


def toml_sections(block: str) -> dict[str, str]:
    """'[smtp]\\nport = 1\\n\\n[delivery]...' -> {'smtp': 'port = 1', ...}."""
    sections: dict[str, list[str]] = {}
    name = ""
    for line in block.splitlines():
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            sections[name] = []
        elif name and line.strip():
            sections[name].append(line)
    return {key: "\n".join(lines) for key, lines in sections.items()}


def setup_postfix(config_path: Path, *arguments: str) -> str:
    result = CliRunner().invoke(cli, ["-c", str(config_path), "setup", "postfix", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def providers() -> Iterator[Sink]:
    handler = ProviderHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield Sink(port, handler, controller)
    controller.stop()


@pytest.fixture(scope="session")
def fronts(providers: Sink) -> Iterator[Callable[[str], Front]]:
    """Start, on first use, the session's Postfix for a mode: "smtp", "lmtp" (Unix socket)
    or "lmtp-inet" (LMTP over TCP)."""
    assert shutil.which("postfix") or Path("/usr/sbin/postfix").exists(), (
        "Postfix is not installed (.ci/run installs it)"
    )
    started: dict[str, Front] = {}

    def front(mode: str) -> Front:
        if mode in started:
            return started[mode]
        folder = make_folder()
        if mode == "lmtp":
            listen = f'protocol = "lmtp"\nsocket = "{folder}/lmtp.sock"\nsocket_group = "postfix"'
        elif mode == "lmtp-inet":
            listen = f'protocol = "lmtp"\nhost = "127.0.0.1"\nport = {free_port()}'
        else:
            listen = f'host = "127.0.0.1"\nport = {free_port()}'
        template = write_config(
            folder,
            "sqlite:///unused.db",
            smtp=listen,
            smarthost=f'host = "127.0.0.1"\nport = {free_port()}',
        )
        flag = "--smtp" if mode == "smtp" else "--lmtp"
        output = setup_postfix(template, flag, "--postfix-dir", str(folder))
        verdicts = folder / "dmarc-verdicts"
        verdicts.write_text(
            f"/@spoofed\\.example$/ PREPEND Authentication-Results: {MX_HOSTNAME}; dmarc=fail\n"
            f"/./ PREPEND Authentication-Results: {MX_HOSTNAME}; dmarc=pass\n"
        )
        instance = PostfixInstance(
            folder,
            mx_port=free_port(),
            sink_port=providers.port,
            setup_output=output,
            extra_main_cf=(
                "# ---- test-only: a stand-in for a DMARC checker ----\n"
                f"smtpd_sender_restrictions = check_sender_access regexp:{verdicts}\n"
            ),
        )
        instance.start()
        relay_toml = postfix_snippets.parse(output)["relay.toml"]
        started[mode] = Front(mode, instance, toml_sections(relay_toml))
        return started[mode]

    yield front
    for each in started.values():
        each.postfix.stop()
        if not os.environ.get("RELAY_TEST_KEEP_POSTFIX"):  # to read its maillog afterwards
            shutil.rmtree(each.postfix.folder, ignore_errors=True)


@dataclass
class Setup:
    front: Front
    pair: PairInfo
    store: db.Store
    config_path: Path
    relay: RunningRelay | None = None

    def start_relay(self) -> RunningRelay:
        self.relay = RunningRelay(load_config(self.config_path))
        return self.relay

    def send(self, message: Any, envelope_from: str, to: list[str]) -> None:
        """A participant's client hands mail to the MX, the front Postfix."""
        with smtplib.SMTP("127.0.0.1", self.front.postfix.mx_port, timeout=10) as client:
            data = message if isinstance(message, bytes) else wire(message)
            client.sendmail(envelope_from, to, data)


@pytest.fixture
def behind(
    fronts: Callable[[str], Front], providers: Sink, tmp_path: Path, database_url: str
) -> Iterator[Callable[..., Setup]]:
    """behind(mode, start=True, **sections): a relay behind that mode's Postfix, with a pair."""
    made: list[Setup] = []

    def make(mode: str, start: bool = True, **sections: str) -> Setup:
        front = fronts(mode)
        printed = dict(front.relay_sections)  # [smtp], [delivery], [smarthost] as printed
        printed["delivery"] += '\npoll_interval = "1s"\nretry_first = "1s"'
        path = write_config(
            tmp_path, database_url, **(printed | {"rules": 'disable = ["new_pair"]'} | sections)
        )
        config = load_config(path)
        store = db.Store(config.database.url)
        db.upgrade(store)
        setup = Setup(front, make_pair(store, config), store, path)
        made.append(setup)
        if start:
            setup.start_relay()
        return setup

    yield make
    for setup in made:
        if setup.relay is not None:
            setup.relay.stop()
        setup.store.dispose()
        instance = setup.front.postfix
        # Nothing of this test may reach the next one's relay.
        subprocess.run(
            ["postsuper", "-c", str(instance.folder), "-d", "ALL"],
            check=True,
            capture_output=True,
        )
    handler = providers.handler
    assert isinstance(handler, ProviderHandler)
    handler.received.clear()
    handler.refuse.clear()


def forwards(providers: Sink, recipient: str) -> list:
    return [each for each in providers.to(recipient) if "Auto-Submitted" not in each.message]


def notices(providers: Sink, recipient: str, subject_start: str) -> list:
    return [
        each
        for each in providers.to(recipient)
        if str(each.message["Subject"]).startswith(subject_start)
    ]


# -- the way there and back --------------------------------------------------


@pytest.mark.parametrize("mode", [*MODES, "lmtp-inet"])
def test_mail_goes_through_postfix_both_ways_scrubbed_signed_and_threaded(
    behind, providers: Sink, tmp_path: Path, mode: str
):
    write_private_key(rsa_key(), tmp_path / "dkim.pem")
    setup = behind(mode, dkim='selector = "mr2026"\nkey_file = "dkim.pem"')
    pair = setup.pair
    dns_output = CliRunner().invoke(cli, ["-c", str(setup.config_path), "setup", "dns"]).output
    published = published_txt(dns_output, "mr2026._domainkey.relay.test.")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mr2026._domainkey.relay.test."
        return published

    first = mail(
        f"Ana <{pair.mentor}>",
        pair.address,
        "Plans",
        f"Write to me at {pair.mentor}",
        Message_ID="<m1@mentors.example.org>",
    )
    setup.send(first, pair.mentor, [pair.address])
    seen_by_mentee = wait_for(lambda: forwards(providers, pair.mentee), SLOW, "the forward")[0]
    # It went through Postfix on the way out: its Received header is on top.
    assert seen_by_mentee.data.startswith(b"Received: from ")
    assert f"by {MX_HOSTNAME} (Postfix)".encode() in seen_by_mentee.data.split(b"\r\n\r\n")[0]
    assert dkim.verify(seen_by_mentee.data, dnsfunc=dns)
    for secret in (pair.mentor, "mentors.example.org"):
        assert secret.encode() not in seen_by_mentee.data.lower(), secret
    assert seen_by_mentee.envelope_from.startswith("bounce-")
    assert seen_by_mentee.message["From"].addresses[0].addr_spec == pair.address
    with setup.store.session() as session:
        assert session.scalars(select(Message.source)).one() == mode.split("-")[0]

    relay_id = seen_by_mentee.message["Message-ID"]
    reply = mail(
        pair.mentee,
        pair.address,
        "Re: Plans",
        "Sounds good",
        Message_ID="<m2@school.example.net>",
        In_Reply_To=relay_id,
        References=relay_id,
    )
    setup.send(reply, pair.mentee, [pair.address])
    back = wait_for(lambda: forwards(providers, pair.mentor), SLOW, "the reply")[0]
    assert back.message["In-Reply-To"] == "<m1@mentors.example.org>"
    assert back.message["From"].addresses[0].addr_spec == pair.address
    assert dkim.verify(back.data, dnsfunc=dns)
    assert pair.mentee.encode() not in back.data.lower()


def published_txt(zone: str, name: str) -> bytes:
    """The TXT value `relay setup dns` prints for name, its strings joined."""
    line = next(line for line in zone.splitlines() if line.startswith(name))
    strings = line.split(" IN TXT ", 1)[1].strip("() ").split('" "')
    return "".join(part.strip('"') for part in strings).encode()


# -- a bounce after Postfix accepted ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_refused_recipient_bounces_to_the_relay_which_tells_the_sender(
    behind, providers: Sink, mode: str
):
    setup = behind(mode)
    pair = setup.pair
    handler = providers.handler
    assert isinstance(handler, ProviderHandler)
    wait_for(lambda: providers.to(pair.mentee), SLOW, "the introduction")
    handler.refuse.add(pair.mentee)
    setup.send(mail(pair.mentor, pair.address, "Lost"), pair.mentor, [pair.address])

    told = wait_for(lambda: notices(providers, pair.mentor, "Not delivered"), SLOW, "the notice")
    notice = told[0]
    text = notice.data.decode().lower()
    assert '"lost"' in text and "could not be delivered" in text
    for secret in (pair.mentee, "school.example.net", "no such mailbox"):
        assert secret not in text, secret
    log = setup.front.postfix.log()
    assert "status=bounced" in log
    with setup.store.session() as session:
        forward = session.scalars(
            select(OutboxEntry).where(OutboxEntry.kind == OutboxKind.FORWARD)
        ).one()
        assert forward.status is DeliveryStatus.FAILED
        assert "bounced after delivery (status 5.1.1)" in (forward.last_error or "")


# -- the relay down: Postfix keeps the mail ------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_mail_waits_in_postfix_while_the_relay_is_down(behind, providers: Sink, mode: str):
    setup = behind(mode, start=False)
    pair = setup.pair
    setup.send(mail(pair.mentor, pair.address, "While you were out"), pair.mentor, [pair.address])
    # The client has its 250 from Postfix; Postfix holds the mail and retries.
    postfix = setup.front.postfix
    wait_for(lambda: "status=deferred" in postfix.log(), SLOW, "Postfix deferring the mail")
    assert "While you were out" not in str([each.data for each in providers.received])
    assert pair.address in postfix.queue()

    setup.start_relay()
    postfix.flush()
    arrived = wait_for(lambda: forwards(providers, pair.mentee), SLOW, "the forward")
    assert arrived[0].message["Subject"] == "While you were out"
    with setup.store.session() as session:
        assert session.scalars(select(Message.status)).all() == [MessageStatus.QUEUED]


# -- Authentication-Results from the front --------------------------------------


def test_front_results_count_only_under_the_trusted_id(behind, providers: Sink):
    trusting = behind(
        "smtp",
        rules=f'disable = ["new_pair"]\n[rules.authentication]\ntrusted_authserv_id = "{MX_HOSTNAME}"',
    )
    pair = trusting.pair
    # Ana's From, sent from elsewhere: the front's stand-in checker says dmarc=fail.
    trusting.send(mail(pair.mentor, pair.address, "Spoofed"), "ana@spoofed.example", [pair.address])
    # Ana from her own provider: dmarc=pass; and a header she wrote herself claiming
    # the front's name (below her provider's Received header) is not believed.
    genuine = mail(pair.mentor, pair.address, "Genuine")
    genuine["Received"] = "from laptop by smtp.mentors.example.org"
    genuine["Authentication-Results"] = f"{MX_HOSTNAME}; dmarc=fail"
    trusting.send(genuine, pair.mentor, [pair.address])

    def by_subject() -> dict[str, Message]:
        with trusting.store.session() as session:
            rows = session.scalars(select(Message)).all()
            return {row.subject: row for row in rows}

    stored = wait_for(lambda: len(by_subject()) == 2 and by_subject(), SLOW, "both messages")
    assert stored["Spoofed"].status is MessageStatus.HELD
    assert "is not authenticated (dmarc=fail per mx" in stored["Spoofed"].hits
    assert stored["Genuine"].status is MessageStatus.QUEUED
    assert stored["Genuine"].hits == "[]"


def test_front_results_under_another_id_do_not_count(behind, providers: Sink):
    other = behind(
        "smtp",
        rules='disable = ["new_pair"]\n[rules.authentication]\ntrusted_authserv_id = "other-mx.example"',
    )
    pair = other.pair
    other.send(mail(pair.mentor, pair.address, "Spoofed"), "ana@spoofed.example", [pair.address])
    # The front's dmarc=fail is not read (another id); nor is anything else it says, so
    # the trusted MTA gave no verdict: the From is not authenticated and is held.

    def stored() -> list[Message]:
        with other.store.session() as session:
            return list(session.scalars(select(Message)))

    held = wait_for(stored, SLOW, "the message")[0]
    assert held.status is MessageStatus.HELD
    assert "(dmarc=none per other-mx.example)" in held.hits


def test_unknown_pair_address_bounces_from_postfix_with_the_relays_reason(behind, providers: Sink):
    setup = behind("lmtp")
    pair = setup.pair
    unknown = "zz22zz22zz22z@relay.test"
    # Postfix takes mail for the whole relay domain; the relay refuses the address.
    setup.send(mail(pair.mentor, unknown, "Typo"), pair.mentor, [unknown])
    dsn = wait_for(
        lambda: [each for each in providers.to(pair.mentor) if each.envelope_from in ("", "<>")],
        SLOW,
        "Postfix's bounce to the sender",
    )[0]
    assert dsn.message.get_content_type() == "multipart/report"
    assert b"550 5.1.1 unknown pair address" in dsn.data
    with setup.store.session() as session:
        assert session.scalars(select(Message)).all() == []
