"""What the safeguarding tests share: a lead, the CLI, reading the store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import func, select

from relay.cli import cli
from relay.store import db
from relay.store.models import Message, OutboxEntry
from relay.store.safeguarding_models import Concern
from tests.conftest import MENTEE, MENTOR, Sink

LEAD = "lead@staff.example.org"
SECOND_LEAD = "deputy@staff.example.org"
LEADS = f'leads = ["{LEAD}", "{SECOND_LEAD}"]'
REAL_ADDRESSES = (MENTOR[0], MENTEE[0])


def run(config_path: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config_path), *args], input=input)


def count(store: db.Store, model: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def concerns(store: db.Store) -> list[Concern]:
    with store.session() as session:
        rows = list(session.scalars(select(Concern).order_by(Concern.id)))
        for row in rows:
            _ = (row.pairs, row.messages, row.events)  # load before the session ends
        return rows


def messages(store: db.Store) -> list[Message]:
    with store.session() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def outbox(store: db.Store) -> list[OutboxEntry]:
    with store.session() as session:
        return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def alerts_to(sink: Sink, address: str) -> list[str]:
    """Subjects of the mail a lead has received."""
    return [str(each.message["Subject"]) for each in sink.to(address)]
