"""Escalation: each phrase family holds the message, pauses the pair, opens a concern and
alerts every lead once; overdue holds are reported once and never released."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.delivery.notices import Notice, Notices
from relay.safeguarding import tick
from relay.store import registry
from relay.store.states import MessageStatus, PairStatus
from tests.conftest import MENTEE, MENTOR, Sink, mail, wait_for
from tests.safeguarding.corpus import RISKY
from tests.safeguarding.helpers import (
    LEAD,
    LEADS,
    REAL_ADDRESSES,
    SECOND_LEAD,
    concerns,
    messages,
    outbox,
    run,
)


def pair_status(store, address: str) -> PairStatus:
    with store.session() as session:
        return registry.find_pair(session, address, "relay.test").status


@pytest.mark.parametrize("family", sorted(RISKY))
def test_each_family_escalates_pauses_and_alerts_once(configured, sink: Sink, family: str):
    relay, pair, store = configured(safeguarding=LEADS)
    sink.wait_for(2)
    sender = MENTEE[0] if family in ("disclosure of harm", "self-harm") else MENTOR[0]
    relay.send(mail(sender, pair.address, "Hi", RISKY[family][0]), sender, pair.address)

    [message] = messages(store)
    assert message.status is MessageStatus.HELD
    assert pair_status(store, pair.address) is PairStatus.PAUSED
    [concern] = concerns(store)
    assert concern.source == "escalation" and [m.id for m in concern.messages] == [message.id]
    assert family in concern.summary
    wait_for(lambda: sink.to(LEAD) and sink.to(SECOND_LEAD), what="both leads alerted")
    # The partner meanwhile hears nothing, and neither does the sender (no "held" notice).
    partner = MENTOR[0] if sender == MENTEE[0] else MENTEE[0]
    relay.send(mail(partner, pair.address, "Hello", "An ordinary reply"), partner, pair.address)
    assert [m.status for m in messages(store)] == [MessageStatus.HELD] * 2
    assert [m.hits.count('"paused"') for m in messages(store)] == [0, 1]
    alerts = [row for row in outbox(store) if row.notice == Notice.LEAD_ALERT]
    assert sorted(row.recipient for row in alerts) == sorted([LEAD, SECOND_LEAD])
    alert = sink.to(LEAD)[0]
    assert f"concern {concern.id}" in str(alert.message["Subject"])
    assert all(real.encode() not in alert.data for real in REAL_ADDRESSES)
    assert [row.notice for row in outbox(store) if row.recipient == sender] == [Notice.INTRO]
    assert len(sink.to(partner)) <= 2  # the introduction, maybe a "held" notice of their own
    assert all(each.message["Subject"] != "Hi" for each in sink.to(partner))


def test_a_second_escalation_grows_the_same_concern(configured, sink: Sink):
    relay, pair, store = configured(safeguarding=LEADS)
    relay.send(
        mail(MENTOR[0], pair.address, "a", "This is our little secret"), MENTOR[0], pair.address
    )
    relay.send(mail(MENTOR[0], pair.address, "b", "Delete this message"), MENTOR[0], pair.address)
    [concern] = concerns(store)
    assert len(concern.messages) == 2
    assert len([r for r in outbox(store) if r.notice == Notice.LEAD_ALERT]) == 4  # 2 leads x 2


def test_overdue_holds_alert_the_leads_once_and_never_deliver(
    configured, sink: Sink, tmp_path: Path
):
    relay, pair, store = configured(
        safeguarding=f'{LEADS}\ndecide_within = "1s"\ncheck_interval = "0.2s"\nfooter = ""'
    )
    sink.wait_for(2)
    relay.send(
        mail(MENTOR[0], pair.address, "Link", "See https://example.com/x"), MENTOR[0], pair.address
    )
    wait_for(lambda: sink.to(LEAD), what="the overdue alert")
    [alert] = sink.to(LEAD)
    assert "undecided" in str(alert.message["Subject"])
    [message] = messages(store)
    assert f"#{message.id}" in alert.message.get_body().get_content()
    # More ticks (the daemon's and one by hand) tell nobody again.
    wait_for(lambda: len(outbox(store)) >= 4, what="the second lead's alert")
    with store.session() as session:
        assert tick.run(session, relay.config, Notices(relay.config)) is False
    assert [r.notice for r in outbox(store)].count(Notice.OVERDUE_ALERT) == 2
    assert messages(store)[0].status is MessageStatus.HELD
    assert len(sink.to(MENTEE[0])) == 1  # the introduction, never the held message

    config = tmp_path / "relay.toml"
    held = run(config, "held")
    assert held.output.splitlines()[1].startswith(f"{message.id}!")
    assert "overdue" in held.output
    status = run(config, "status", "--json")
    assert '"overdue_held": 1' in status.output
