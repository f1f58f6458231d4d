"""Shared set-up for the programme tests: a cohort with pairs, ticks at chosen times."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from relay.cli import cli
from tests.conftest import Received, Sink


def run(config_path: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["-c", str(config_path), *args])
    return result


def ok(config_path: Path, *args: str) -> str:
    result = run(config_path, *args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def next_monday(weeks_ahead: int = 1) -> date:
    today = date.today()
    return today + timedelta(days=(7 - today.weekday()) % 7 + 7 * weeks_ahead)


def at(day: date, hour: int = 9, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute).strftime("%Y-%m-%d %H:%M")


def tick(config_path: Path, day: date, hour: int = 9, minute: int = 0) -> str:
    return ok(config_path, "tick", "--at", at(day, hour, minute))


def people(config_path: Path, n: int, prefix: str = "") -> list[tuple[str, str]]:
    """n mentor/mentee pairs of participants, registered; their addresses."""
    found = []
    for i in range(n):
        mentor = f"{prefix}mentor{i}@mentors.example.org"
        mentee = f"{prefix}mentee{i}@school.example.net"
        ok(
            config_path,
            "participant",
            "add",
            mentor,
            "--name",
            f"Mentor {prefix}{i}",
            "--role",
            "mentor",
        )
        ok(
            config_path,
            "participant",
            "add",
            mentee,
            "--name",
            f"Mentee {prefix}{i}",
            "--role",
            "mentee",
        )
        found.append((mentor, mentee))
    return found


def pair_up(config_path: Path, mentor: str, mentee: str, cohort: str | None = None) -> str:
    args = ["pair", "create", "--mentor", mentor, "--mentee", mentee]
    if cohort:
        args += ["--cohort", cohort]
    return ok(config_path, *args).strip()


def schedule(config_path: Path, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(ok(config_path, "schedule", "--json", *args)))


def subjects_to(sink: Sink, address: str) -> Counter[str]:
    return Counter(str(r.message["Subject"]) for r in sink.to(address))


def from_checkin(received: Received) -> bool:
    return "checkin-" in str(received.message["From"])


def bulk_cohort(store: Any, config: Any, pairs: int, start: date, name: str = "big") -> None:
    """A cohort of many pairs, written with a few bulk inserts (no introductions)."""
    from datetime import UTC, time

    from sqlalchemy import insert

    from relay.mail.addresses import new_token
    from relay.programme import cohorts
    from relay.store.models import Pair, Participant, ParticipantAddress

    with store.session() as session:
        cohort = cohorts.create_cohort(session, config, name, start, 34, "")
        first = start - timedelta(days=1)
        people, addresses, made = [], [], []
        for i in range(pairs):
            for offset, role, domain in ((1, "mentor", "mentors"), (2, "mentee", "school")):
                pid = 2 * i + offset
                email = f"{role}{i}@{domain}.example.org"
                people.append(
                    {
                        "id": pid,
                        "email": email,
                        "display_name": f"{role} {i}",
                        "role": role,
                        "watched": False,
                    }
                )
                addresses.append({"participant_id": pid, "email": email})
            made.append(
                {
                    "token": new_token(),
                    "mentor_id": 2 * i + 1,
                    "mentee_id": 2 * i + 2,
                    "status": "active",
                    "watched": False,
                    "cohort_id": cohort.id,
                    "started_on": start,
                    "weeks": 34,
                    "next_item_at": datetime.combine(first, time(), tzinfo=UTC),
                }
            )
        session.execute(insert(Participant), people)
        session.execute(insert(ParticipantAddress), addresses)
        session.execute(insert(Pair), made)
