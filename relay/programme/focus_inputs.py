"""What the focus list reads that a caller has already computed, handed over as it is.

`relay focus` computes everything itself. `relay report` reads the same
facts in its own passes over messages and prompts (each side's latest
message, each pair's prompts); it hands them over here so that the focus
list does not read every message and every prompt a second time. The
meaning is the focus list's own: the latest message a participant sent to
the pair at any time, and the times of the pair's last two prompts sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from relay.programme.plan import week_starts_at
from relay.programme.silence import Silence


@dataclass(frozen=True)
class FocusInputs:
    pairs: Collection[int]  # the pairs these facts cover; the focus list looks at no other
    last_written: Mapping[int, Mapping[int, datetime]]  # pair -> sender -> latest message
    # pair -> its last two prompts, newest first; None: the focus list reads them itself
    last_prompts: Mapping[int, list[datetime]] | None = None


def silences_from(
    inputs: FocusInputs,
    pairs: Collection[Any],
    now: datetime,
    time_zone: str,
    send_hour: int,
) -> list[Silence]:
    """relay.programme.silence.silences() for the covered pairs, from the handed-over times.

    ``pairs``: rows (id, token, cohort name, status, started_on, mentor_id,
    mentee_id, cohort_id) of the open pairs; as silences(), only pairs in a
    cohort whose programme has begun, in id order.
    """
    found = []
    for pair_id, token, cohort, status, started_on, mentor_id, mentee_id, cohort_id in sorted(
        pairs, key=lambda row: row[0]
    ):
        started: date | None = started_on
        if pair_id not in inputs.pairs or cohort_id is None or started is None:
            continue
        if started > now.date():
            continue
        started_at = week_starts_at(started, 1, time_zone, send_hour)
        if started_at > now:
            continue
        written = inputs.last_written.get(pair_id, {})
        found.append(
            Silence(
                pair_id,
                token,
                cohort,
                status,
                started_at,
                mentor_id,
                mentee_id,
                None,
                None,
                written.get(mentor_id),
                written.get(mentee_id),
            )
        )
    return found
