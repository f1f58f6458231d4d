"""What the database says before a round of matching, and checking a proposals file.

Owns the two questions a second round asks of the store: who is already paired (a
mentee with an active or paused pair sits the round out, a mentor's places shrink by
their active and paused pairs, two people who were ever paired are never proposed
again), and whether a proposals file can be applied as it stands (each problem named
with its line). Addresses are compared through every registered address of a
participant, so a profile under a second address is still the same person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from matching.proposals import ProposalRow
from relay.mail.addresses import pair_address
from relay.store.models import Pair, Participant, ParticipantAddress
from relay.store.states import OPEN_PAIR_STATES, Role


# Tuples, not dataclasses: a round reads every address and pair there is (100,000 rows
# and more), and a NamedTuple is built several times faster than a frozen dataclass.
class Person(NamedTuple):
    participant_id: int
    email: str  # the participant's main address
    name: str
    role: Role


class PairOnRecord(NamedTuple):
    mentor_id: int
    mentee_id: int
    token: str
    state: str
    domain: str

    @property
    def address(self) -> str:
        return pair_address(self.token, self.domain)


@dataclass(frozen=True)
class RoundState:
    """Participants by every address they have, and every pair there is or was."""

    people: Mapping[str, Person]
    pairs: Sequence[PairOnRecord]
    open_by_mentee: Mapping[int, PairOnRecord]
    load: Counter[int]  # active and paused pairs per mentor id
    ever: frozenset[tuple[int, int]]  # (mentor id, mentee id) of every pair there is or was

    def open_pair_of_mentee(self, email: str) -> PairOnRecord | None:
        person = self.people.get(email)
        return None if person is None else self.open_by_mentee.get(person.participant_id)

    def ids_of(self, emails: Sequence[str]) -> dict[str, int]:
        return {e: self.people[e].participant_id for e in emails if e in self.people}


def round_state(session: Session, domain: str) -> RoundState:
    # Core, not the ORM: a round reads every address and pair (70,000 rows for 30,000
    # pairs), and the ORM's row loading cost about ten times the query.
    connection = session.connection()
    rows = connection.execute(
        select(
            ParticipantAddress.email,
            Participant.id,
            Participant.email,
            Participant.display_name,
            Participant.role,
        ).join(Participant, Participant.id == ParticipantAddress.participant_id)
    ).all()
    people = {address: Person(pid, main, name, role) for address, pid, main, name, role in rows}
    pairs = [
        PairOnRecord(mentor_id, mentee_id, token, str(status), domain)
        for mentor_id, mentee_id, token, status in connection.execute(
            select(Pair.mentor_id, Pair.mentee_id, Pair.token, Pair.status)
        )
    ]
    open_pairs = [p for p in pairs if p.state in OPEN_PAIR_STATES]
    return RoundState(
        people=people,
        pairs=pairs,
        open_by_mentee={p.mentee_id: p for p in open_pairs},
        load=Counter(p.mentor_id for p in open_pairs),
        ever=frozenset((p.mentor_id, p.mentee_id) for p in pairs),
    )


def exclusions(state: RoundState, emails: Sequence[str]) -> set[tuple[str, str]]:
    """(mentor email, mentee email) of the given profile emails that were ever paired."""
    ids = state.ids_of(emails)
    by_id: dict[int, list[str]] = {}
    for email, pid in ids.items():
        by_id.setdefault(pid, []).append(email)
    return {
        (mentor, mentee)
        for mentor_id, mentee_id in state.ever
        for mentor in by_id.get(mentor_id, ())
        for mentee in by_id.get(mentee_id, ())
    }


@dataclass(frozen=True)
class Problem:
    line: int
    text: str


def check_proposals(
    state: RoundState, rows: Sequence[ProposalRow], capacity_of: Mapping[str, int]
) -> list[Problem]:
    """Every reason a row of a proposals file cannot be applied, in file order.

    ``capacity_of`` maps a mentor's email to their number of places, where the file
    says (a proposals file written by `relay match` does); places already taken by
    active and paused pairs count against it.
    """
    problems: list[Problem] = []
    mentee_line: dict[str, int] = {}
    role_line: dict[str, tuple[Role, int]] = {}
    load = state.load
    taken_in_file: Counter[str] = Counter()
    ever = state.ever
    for row in rows:

        def problem(text: str, line: int = row.line) -> None:
            problems.append(Problem(line, text))

        for email, role, name in (
            (row.mentor_email, Role.MENTOR, row.mentor_name),
            (row.mentee_email, Role.MENTEE, row.mentee_name),
        ):
            person = state.people.get(email)
            if person is not None and person.role is not role:
                problem(f"{email} is registered as a {person.role}, not a {role}")
            elif person is not None and name and name != person.name:
                problem(f"{email} is registered as {person.name!r}, not {name!r}")
            earlier = role_line.setdefault(email, (role, row.line))
            if earlier[0] is not role:
                problem(f"{email} is a {earlier[0]} on line {earlier[1]}, not a {role}")
        if row.mentee_email in mentee_line:
            problem(f"mentee {row.mentee_email} is already on line {mentee_line[row.mentee_email]}")
        mentee_line.setdefault(row.mentee_email, row.line)
        existing = state.open_pair_of_mentee(row.mentee_email)
        if existing is not None:
            problem(f"mentee {row.mentee_email} is already paired at {existing.address}")
        mentor, mentee = state.people.get(row.mentor_email), state.people.get(row.mentee_email)
        if mentor and mentee and (mentor.participant_id, mentee.participant_id) in ever:
            problem(f"{row.mentor_email} and {row.mentee_email} were paired before")
        taken_in_file[row.mentor_email] += 1
        places = capacity_of.get(row.mentor_email)
        if places is not None:
            held = load[mentor.participant_id] if mentor else 0
            if held + taken_in_file[row.mentor_email] > places:
                problem(
                    f"mentor {row.mentor_email} has {_places(places)}, {held} taken by "
                    "current pairs: this row is one too many"
                )
    return problems


def _places(count: int) -> str:
    return "1 place" if count == 1 else f"{count} places"
