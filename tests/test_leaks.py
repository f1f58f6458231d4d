"""The leak suite: real clients' mail goes through the running relay and nothing identifies the sender.

Every message in tests/leak/ (Gmail, Outlook, Apple Mail, Thunderbird and
others, as they write them: quoted replies, forwards inline and attached,
signatures, inline pictures, vCards, invitations, encoded words, base64 and
quoted-printable, non-UTF-8 charsets) is sent over SMTP to one running
relay by the participant its From names. Whatever the rules hold is
approved from the command line, as a moderator would. Then every delivered
message is searched, raw and decoded every way a reader or a client could
decode it (transfer encodings, charsets, encoded words, RFC 2231 names,
URL escapes, HTML entities, vCard/iCalendar folding, nested messages), for:
each real address of both participants, their local parts followed by "@",
the sender's domains, the host names from the original's Received headers,
and the sender's client IP. The recipient's own address may appear in To,
and only there.
"""

from __future__ import annotations

import base64
import binascii
import html
import quopri
import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from relay.cli import cli
from relay.delivery.notices import Notices
from relay.store import db, registry
from relay.store.models import Message, MessageStatus, OutboxEntry, Pair, Role
from tests.conftest import (
    Environment,
    RunningRelay,
    forwarding_environment,
    wait_for,
)

CORPUS = Path(__file__).parent / "leak"
TOKEN = "k7m2p9qrs4tuv"  # the pair address the corpus files are written to
PAIR = f"{TOKEN}@relay.test"
CLIENT_IP = "198.51.100.23"
PEOPLE = {
    "mentor": ("Ana Mentor", ("ana.real@mentors.example.org", "ana.private@othermail.example")),
    "mentee": ("Ben Mentee", ("ben.real@school.example.net", "ben.home@familymail.example")),
}
EVERY_ADDRESS = tuple(a for _, addresses in PEOPLE.values() for a in addresses)
_HOST = re.compile(r"(?<![\w.-])((?:[a-z0-9-]+\.)+[a-z]{2,})(?![\w-])", re.IGNORECASE)
_INVISIBLE = re.compile(r"<wbr\s*/?>|[\u00ad\u200b-\u200d\u2060]", re.IGNORECASE)
_ARMOR = re.compile(r"-----BEGIN PGP [A-Z ]+-----\s+(.*?)-----END PGP", re.DOTALL)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.eml"))


def read_wire(path: Path) -> bytes:
    """The file as it travels over SMTP: CRLF line ends."""
    return re.sub(rb"\r?\n", b"\r\n", path.read_bytes())


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def role_of(address: str) -> str:
    return next(role for role, (_, addresses) in PEOPLE.items() if address.lower() in addresses)


def received_hosts(original: EmailMessage) -> set[str]:
    """Host names the sender's side wrote into Received (the relay's own excepted)."""
    hosts = set()
    for value in original.get_all("Received", []):
        for host in _HOST.findall(str(value)):
            if not host.lower().endswith("relay.test"):
                hosts.add(host.lower())
    return hosts


# -- one relay, every corpus message through it -------------------------------------


@dataclass
class Sent:
    path: Path
    sender: str
    recipient: str
    reply: str = ""
    message_id: int | None = None
    relay_message_id: str = ""
    held: bool = False


@dataclass
class Run:
    sent: dict[str, Sent] = field(default_factory=dict)
    delivered: dict[str, bytes] = field(default_factory=dict)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("leaks")
    with forwarding_environment(folder) as environment:
        yield from _run_corpus(environment)


def _run_corpus(environment: Environment) -> Iterator[Run]:
    sink, config_path, config, store = (
        environment.sink,
        environment.config_path,
        environment.config,
        environment.store,
    )
    with store.session() as session:
        for role, (name, (main, extra)) in PEOPLE.items():
            registry.add_participant(session, main, name, Role(role), (extra,))
        registry.create_pair(
            session, Notices(config), "relay.test", PEOPLE["mentor"][1][0], PEOPLE["mentee"][1][0]
        )
        # The corpus is written to a fixed pair address, as a participant's client would hold it.
        session.execute(update(Pair).values(token=TOKEN))
    relay = RunningRelay(config)
    result = Run()
    try:
        for path in corpus_files():
            result.sent[path.name] = send(relay, store, path)
        approve_held(config_path, store, result)
        wanted = {s.relay_message_id: name for name, s in result.sent.items() if s.message_id}

        def all_delivered() -> bool:
            for each in sink.received:
                found = parse(each.data).get("Message-ID", "")
                if found in wanted:
                    result.delivered[wanted[found]] = each.data
            return len(result.delivered) == len(wanted)

        try:
            wait_for(all_delivered, timeout=60, what="every accepted corpus message at the sink")
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; {undelivered(store, result)}") from None
        yield result
    finally:
        relay.stop()


def send(relay: RunningRelay, store: db.Store, path: Path) -> Sent:
    raw = read_wire(path)
    sender = parse(raw)["From"].addresses[0].addr_spec.lower()
    partner = "mentee" if role_of(sender) == "mentor" else "mentor"
    sent = Sent(path, sender, PEOPLE[partner][1][0])
    try:
        with relay.smtp() as client:
            client.sendmail(sender, [PAIR], raw)
        sent.reply = "250"
    except smtplib.SMTPResponseException as refused:
        error = refused.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else error
        sent.reply = f"{refused.smtp_code} {text}"
        return sent
    with store.session() as session:
        row = session.scalars(select(Message).order_by(Message.id.desc()).limit(1)).one()
        sent.message_id, sent.relay_message_id = row.id, row.relay_message_id
        sent.held = row.status is MessageStatus.HELD
    return sent


def undelivered(store: db.Store, run: Run) -> str:
    """Where the corpus messages that never reached the sink are (for the failure message)."""
    missing = {s.message_id: name for name, s in run.sent.items() if name not in run.delivered}
    with store.session() as session:
        rows = session.execute(
            select(
                Message.id,
                Message.status,
                OutboxEntry.kind,
                OutboxEntry.status,
                OutboxEntry.last_error,
            )
            .outerjoin(OutboxEntry, OutboxEntry.message_id == Message.id)
            .where(Message.id.in_([i for i in missing if i is not None]))
        ).all()
    return "not delivered: " + "; ".join(
        f"{missing[row[0]]} (message {row[1]}, outbox {row[2]} {row[3]}: {row[4]})" for row in rows
    )


def approve_held(config_path: Path, store: db.Store, run: Run) -> None:
    """What the rules hold (contact cards, invitations), a moderator approves."""
    held = [str(s.message_id) for s in run.sent.values() if s.held]
    if not held:
        return
    result = CliRunner().invoke(
        cli, ["-c", str(config_path), "approve", *held, "--as", "leak-suite"]
    )
    assert result.exit_code == 0, result.output


# -- looking for leaks ---------------------------------------------------------------


def _decoded_payload(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    texts = [payload.decode("latin-1")]
    for each in (charset, "utf-8", "utf-16"):
        try:
            texts.append(payload.decode(each))
        except (LookupError, UnicodeError):
            continue
    return "\n".join(texts)


def _encoded_children(part: EmailMessage) -> str:
    """A message/* part a client base64- or QP-encoded (RFC 2046 forbids it; some do it)."""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    children = part.get_payload()
    if cte not in ("base64", "quoted-printable") or not isinstance(children, list):
        return ""
    text = "".join(child.as_string() for child in children if not isinstance(child, str))
    if cte == "quoted-printable":
        return quopri.decodestring(text.encode("latin-1", "replace")).decode("latin-1")
    return base64.b64decode(re.sub(r"[^A-Za-z0-9+/]", "", text) + "==").decode("latin-1")


def _armored(text: str) -> str:
    """What an ASCII-armored PGP block carries (a key's user id names its owner)."""
    found = []
    for block in _ARMOR.findall(text):
        lines = [line for line in block.splitlines() if line and not line.startswith("=")]
        body = "".join(line for line in lines if ":" not in line)
        try:
            found.append(base64.b64decode(body + "==", validate=False).decode("latin-1"))
        except (binascii.Error, ValueError):
            continue
    return "\n".join(found)


def _views(text: str) -> list[str]:
    """A text as each kind of reader could decode it."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    entities = html.unescape(text)
    views = [text, unfolded, entities, unquote(text), unquote(entities), unquote(unfolded)]
    views.append(quopri.decodestring(unfolded.encode("latin-1", "replace")).decode("latin-1"))
    views.append(text.replace("\\u0040", "@").replace("\\x40", "@"))
    views.append(_armored(text))
    views.append(_INVISIBLE.sub("", entities))
    return views


def readable_texts(raw: bytes) -> Iterator[tuple[str, str]]:
    """(where, text) for everything in a delivered message a person or program could read."""
    yield "raw bytes", raw.decode("latin-1")
    message = parse(raw)
    for index, part in enumerate(message.walk()):
        for name, value in part.items():
            yield f"part {index} header {name}", str(value)
        for header in ("Content-Type", "Content-Disposition"):
            for key, value in part[header].params.items() if header in part else ():
                yield f"part {index} {header} {key}", str(value)
        if not part.is_multipart():
            yield f"part {index} ({part.get_content_type()}) body", _decoded_payload(part)
        else:
            yield f"part {index} ({part.get_content_type()}) encoded body", _encoded_children(part)


def without_to(raw: bytes) -> bytes:
    """The raw message without its top-level To header, the one place the recipient is named."""
    head, _, body = raw.partition(b"\r\n\r\n")
    kept = re.sub(rb"(?im)^to:.*(?:\r\n[ \t].*)*(?:\r\n|$)", b"", head + b"\r\n")
    return kept + b"\r\n" + body


def needles(sent: Sent) -> dict[str, str]:
    """What must not be found, each with a name for the report."""
    original = parse(read_wire(sent.path))
    sender_domains = {a.rpartition("@")[2] for a in PEOPLE[role_of(sent.sender)][1]}
    found = {address: "real address" for address in EVERY_ADDRESS}
    found |= {address.partition("@")[0] + "@": "local part + @" for address in EVERY_ADDRESS}
    found |= {domain: "sender's domain" for domain in sender_domains}
    found |= {host: "Received host" for host in received_hosts(original)}
    found[CLIENT_IP] = "client IP"
    return found


def leaks(sent: Sent, delivered: bytes) -> list[str]:
    looking_for = needles(sent)
    report = []
    for where, text in readable_texts(without_to(delivered)):
        for view in _views(text):
            lowered = view.lower()
            for needle, kind in looking_for.items():
                if needle.lower() in lowered:
                    report.append(f"{kind} {needle!r} in {where}")
    return sorted(set(report))


# -- the tests -----------------------------------------------------------------------


def test_corpus_is_big_enough_and_covers_every_client() -> None:
    names = [path.name for path in corpus_files()]
    assert len(names) >= 40
    for client in ("gmail", "outlook", "apple", "thunderbird"):
        assert any(name.startswith(client) for name in names), client


@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: path.stem)
def test_nothing_identifying_reaches_the_partner(run: Run, path: Path) -> None:
    sent = run.sent[path.name]
    assert sent.reply == "250", f"{path.name} was refused: {sent.reply}"
    delivered = run.delivered[path.name]
    found = leaks(sent, delivered)
    assert not found, f"{path.name} leaks:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: path.stem)
def test_partner_sees_registered_name_and_pair_address(run: Run, path: Path) -> None:
    sent = run.sent[path.name]
    message = parse(run.delivered[path.name])
    sender_name = PEOPLE[role_of(sent.sender)][0]
    (author,) = message["From"].addresses
    assert (author.display_name, author.addr_spec) == (f"{sender_name} via Test Programme", PAIR)
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == sent.recipient
    # The raw bytes name the recipient exactly once: in To.
    assert run.delivered[path.name].lower().count(sent.recipient.encode()) == 1


def test_every_part_still_decodes_after_scrubbing(run: Run) -> None:
    """Scrubbing re-encodes what it changes; the partner's client must still read every part."""
    for name, delivered in run.delivered.items():
        message = parse(delivered)
        for part in message.walk():
            assert not [d for d in part.defects if "Boundary" in type(d).__name__], name
            if part.get_content_maintype() == "text" and not part.is_multipart():
                assert isinstance(part.get_content(), str), name
