"""A paused pair: its address still takes mail, and everything either side writes waits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.cli import cli
from relay.rules.settings import RulesConfig, RulesConfigError
from relay.store import db
from relay.store.models import Message, MessageStatus
from tests.conftest import PairInfo, RunningRelay, Sink, mail, wait_for


def run(config_path: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config_path), *args])


def stored(store: db.Store) -> list[tuple[MessageStatus, list[str]]]:
    with store.session() as session:
        rows = session.scalars(select(Message).order_by(Message.id))
        return [(m.status, [hit["rule"] for hit in json.loads(m.hits)]) for m in rows]


def test_paused_pair_holds_both_sides_until_resumed(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink, pair: PairInfo
):
    sink.wait_for(2)  # the introductions
    paused = run(config_path, "pair", "pause", pair.address)
    assert paused.exit_code == 0, paused.output
    assert paused.output.strip() == f"paused {pair.address}"

    relay.send(mail(pair.mentor, pair.address, "Hi"), pair.mentor, pair.address)
    relay.send(mail(pair.mentee, pair.address, "Hello"), pair.mentee, pair.address)
    assert stored(store) == [
        (MessageStatus.HELD, ["paused"]),
        (MessageStatus.HELD, ["paused"]),
    ]
    listed = run(config_path, "held")
    assert listed.output.count("paused") == 2

    resumed = run(config_path, "pair", "resume", pair.address)
    assert resumed.exit_code == 0, resumed.output
    relay.send(mail(pair.mentor, pair.address, "Back"), pair.mentor, pair.address)
    wait_for(
        lambda: "Back" in [m.message["Subject"] for m in sink.to(pair.mentee)],
        what="the first message after resume",
    )
    # What was held while paused still waits for a person.
    assert [status for status, _ in stored(store)][:2] == [MessageStatus.HELD] * 2


def test_pause_and_resume_refuse_the_wrong_state(config_path: Path, store: db.Store, pair):
    resumed = run(config_path, "pair", "resume", pair.address)
    assert resumed.exit_code == 1
    assert "is active, not paused" in resumed.output
    assert run(config_path, "pair", "pause", pair.address).exit_code == 0
    again = run(config_path, "pair", "pause", pair.address)
    assert again.exit_code == 1
    assert "is paused, not active" in again.output


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"disable": ["paused"]}, "paused cannot be disabled"),
        ({"actions": {"paused": "accept"}}, "must hold or stronger"),
    ],
)
def test_a_paused_pair_cannot_be_configured_away(table: dict[str, object], problem: str):
    with pytest.raises(RulesConfigError, match=problem):
        RulesConfig.from_mapping(table, "relay.toml")
