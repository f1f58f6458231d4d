"""Spot checks: a deterministic sample_rate share of delivered, unflagged mail."""

from __future__ import annotations

import json
import math
from pathlib import Path

from relay.safeguarding.sampling import in_sample
from relay.store.models import Message, OutboxEntry, Pair
from relay.store.states import DeliveryStatus, MessageStatus, OutboxKind
from tests.conftest import MENTOR, PairInfo, Sink, mail, wait_for
from tests.safeguarding.helpers import LEAD, concerns, run


def binomial_bounds(n: int, p: float, tail: float = 1e-6) -> tuple[int, int]:
    """The smallest and largest counts outside of which each tail has less than ``tail``."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, acc = 0, 0.0
    while acc + pmf[low] < tail:
        acc += pmf[low]
        low += 1
    high, acc = n, 0.0
    while acc + pmf[high] < tail:
        acc += pmf[high]
        high -= 1
    return low, high


def add_messages(store, pair_token: str, count: int, *, flagged: bool, prefix: str) -> None:
    with store.session() as session:
        pair = session.query(Pair).filter_by(token=pair_token).one()
        for i in range(count):
            message = Message(
                pair=pair,
                sender=pair.mentor,
                recipient=pair.mentee,
                status=MessageStatus.QUEUED,
                raw=b"Subject: x\r\n\r\nhello\r\n",
                size=20,
                subject=f"m{i}",
                relay_message_id=f"<{prefix}.{i}@relay.test>",
                hits='[{"rule": "links", "reason": "x", "spans": []}]' if flagged else "[]",
                source="smtp",
            )
            session.add(message)
            session.flush()
            session.add(
                OutboxEntry(
                    kind=OutboxKind.FORWARD,
                    message_id=message.id,
                    recipient=pair.mentee.email,
                    content=b"",
                    status=DeliveryStatus.DELIVERED,
                )
            )


def test_sample_counts_match_the_rate_on_a_thousand_messages(
    config_path: Path, store, pair: PairInfo
):
    token = pair.address.split("@")[0]
    add_messages(store, token, 1000, flagged=False, prefix="plain")
    add_messages(store, token, 300, flagged=True, prefix="flagged")  # never sampled
    listed = json.loads(run(config_path, "sample", "--json").output)
    expected = sum(in_sample(f"<plain.{i}@relay.test>", 0.02) for i in range(1000))
    low, high = binomial_bounds(1000, 0.02)
    print(f"\nsampled {len(listed)} of 1000 at 0.02 (expected 20, bounds {low}..{high})")
    assert len(listed) == expected
    assert low <= len(listed) <= high
    assert all(item["subject"].startswith("m") for item in listed)
    flagged = sum(in_sample(f"<flagged.{i}@relay.test>", 0.02) for i in range(300))
    assert flagged > 0  # some flagged ones would have been chosen, and were left out
    again = json.loads(run(config_path, "sample", "--json").output)
    assert again == listed  # deterministic


def test_a_delivered_message_is_sampled_and_marked(configured, sink: Sink, tmp_path: Path):
    relay, pair, store = configured(safeguarding=f'leads = ["{LEAD}"]\nsample_rate = 1.0')
    relay.send(mail(MENTOR[0], pair.address, "Essay", "How is the essay?"), MENTOR[0], pair.address)
    config = tmp_path / "relay.toml"
    wait_for(
        lambda: json.loads(run(config, "sample", "--json").output), what="the delivered message"
    )
    [item] = json.loads(run(config, "sample", "--json").output)
    assert item["subject"] == "Essay" and item["checked"] is None
    marked = run(config, "sample", "mark", str(item["id"]), "concern", "--as", "Kim")
    assert marked.exit_code == 0, marked.output
    assert marked.output.strip() == f"message {item['id']} checked: concern; opened concern 1"
    [concern] = concerns(store)
    assert concern.source == "sample" and concern.raised_by == "Kim"
    [after] = json.loads(run(config, "sample", "--json").output)
    assert after["checked"]["verdict"] == "concern" and after["checked"]["by"] == "Kim"
    summary = run(config, "sample").output.splitlines()[-1]
    assert (
        summary
        == "1 of 1 delivered unflagged messages sampled (rate 1.0); checked: 0 ok, 1 concern"
    )
    twice = run(config, "sample", "mark", str(item["id"]), "ok", "--as", "Kim")
    assert twice.exit_code == 1 and "already checked by Kim" in twice.output
    wait_for(lambda: sink.to(LEAD), what="the lead alert")
