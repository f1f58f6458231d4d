"""The pair directory: token -> pair, both participants and all their addresses, in memory.

Owns the daemon's cache of who may write to which pair address, so that a
message costs no join over pairs, participants and addresses. The database
keeps one counter row (directory_version) that triggers bump on every change
to pairs, participants or their addresses, from any process; each message
is decided from the cache and committed only if the number, read in the
committing transaction (once per group commit), is still the one the cache
was filled at; otherwise the cache is emptied and the message decided again.
A pair ended or an address added is therefore seen by the very next message.

Entries are loaded lazily, one token at a time, so 30,000 pairs cost nothing
until they write, and a change empties the cache without reloading it all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Connection, select

from relay.store.direct import Direct
from relay.store.models import DirectoryVersion, Pair, Participant, ParticipantAddress
from relay.store.states import PairStatus, Role

CACHE_SIZE = 50_000  # entries; beyond it the cache starts over (a pair is one small tuple)


@dataclass(frozen=True)
class Person:
    """A participant as the relay's hot path needs them."""

    id: int
    email: str
    display_name: str
    role: Role
    watched: bool
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class PairEntry:
    id: int
    token: str
    status: PairStatus
    watched: bool
    mentor: Person
    mentee: Person

    def writer(self, address: str) -> Person | None:
        """The participant who registered this From address, if either did."""
        for person in (self.mentor, self.mentee):
            if address in person.addresses:
                return person
        return None

    def partner_of(self, person: Person) -> Person:
        return self.mentee if person.id == self.mentor.id else self.mentor

    @property
    def hidden_addresses(self) -> tuple[str, ...]:
        """Every registered address of both participants: none may reach the other side."""
        return (*self.mentor.addresses, *self.mentee.addresses)


class StaleDirectory(Exception):
    """The directory changed between deciding a message and committing it: decide again."""


class PairDirectory:
    """Lookups answer from memory; the commit that stores a message checks the version.

    A lookup reads the database only for a token it has not seen since the last
    change. The group writer's transaction then reads the version once per batch
    (confirm()), and a message decided on an older directory is not stored but
    decided again, so a change committed before a message's commit is always
    applied to it, at the cost of one small query per batch, not per message.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._entries: dict[str, PairEntry | None] = {}

    @property
    def version(self) -> int | None:
        return self._version

    def lookup(
        self, connection: Connection, token: str, fresh: bool = False
    ) -> tuple[PairEntry | None, int]:
        """(the pair behind token or None, the directory version that answer belongs to).

        fresh=True reads the version first: for a refusal, which no commit will confirm.
        """
        if not fresh:
            with self._lock:
                version = self._version
                if version is not None and token in self._entries:
                    return self._entries[token], version
        version = current_version(connection)
        self._refresh(version)
        with self._lock:
            if token in self._entries:
                return self._entries[token], version
        entry = _load(connection, token)
        with self._lock:
            if self._version == version:  # a newer version emptied the cache meanwhile
                if len(self._entries) >= CACHE_SIZE:
                    self._entries.clear()
                self._entries[token] = entry
        return entry, version

    def confirm(self, connection: Connection, version: int) -> None:
        """Inside the writing transaction: raise StaleDirectory if version is not current."""
        transaction = connection.get_transaction()
        memo = connection.info.get(_CONFIRMED)
        if memo is not None and memo[0] is transaction:
            current = memo[1]
        else:
            current = current_version(connection)
            connection.info[_CONFIRMED] = (transaction, current)
        if current != version:
            self._refresh(current)
            raise StaleDirectory

    def forget(self) -> None:
        """Empty the cache (PostgreSQL announced a change); the next lookup reads the version."""
        with self._lock:
            self._entries.clear()
            self._version = None

    def _refresh(self, version: int) -> None:
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version


_CONFIRMED = "relay_directory_version"  # connection.info: (transaction, version) read in it


# Read in (nearly) every group commit: run on the cursor (relay.store.direct), as
# SQLAlchemy's execution of it cost more than SQLite's answer.
_VERSION = Direct(select(DirectoryVersion.version).where(DirectoryVersion.id == 1))


def current_version(connection: Connection) -> int:
    row = _VERSION.first(connection, {})
    return int(row[0] or 0) if row is not None else 0


def _load(connection: Connection, token: str) -> PairEntry | None:
    pair = connection.execute(
        select(
            Pair.id, Pair.token, Pair.status, Pair.watched, Pair.mentor_id, Pair.mentee_id
        ).where(Pair.token == token)
    ).first()
    if pair is None:
        return None
    people = {
        row.id: row
        for row in connection.execute(
            select(
                Participant.id,
                Participant.email,
                Participant.display_name,
                Participant.role,
                Participant.watched,
            ).where(Participant.id.in_((pair.mentor_id, pair.mentee_id)))
        )
    }
    addresses: dict[int, list[str]] = {pair.mentor_id: [], pair.mentee_id: []}
    for participant_id, email in connection.execute(
        select(ParticipantAddress.participant_id, ParticipantAddress.email)
        .where(ParticipantAddress.participant_id.in_((pair.mentor_id, pair.mentee_id)))
        .order_by(ParticipantAddress.id)
    ):
        addresses[participant_id].append(email)

    def person(participant_id: int) -> Person:
        row = people[participant_id]
        return Person(
            row.id,
            row.email,
            row.display_name,
            Role(row.role),
            bool(row.watched),
            tuple(addresses[participant_id]),
        )

    return PairEntry(
        pair.id,
        pair.token,
        PairStatus(pair.status),
        bool(pair.watched),
        person(pair.mentor_id),
        person(pair.mentee_id),
    )
