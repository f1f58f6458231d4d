"""Which open pair a message is for and which of its participants wrote it.

Owns intake's lookup of a pair address in the pair directory (relay.store.directory)
and the refusals it gives: one answer for a pair that ended and one that never was
(no oracle), and a refusal asked again from the database before it is given.
"""

from __future__ import annotations

from sqlalchemy import Connection

from relay.errors import RefusedError
from relay.mail import replies
from relay.mail.addresses import token_of
from relay.store.directory import PairDirectory, PairEntry, Person
from relay.store.states import OPEN_PAIR_STATES


def writer_in_pair(
    directory: PairDirectory,
    connection: Connection,
    domain: str,
    recipient: str,
    from_address: str,
    believe_from: bool,
) -> tuple[PairEntry, Person | None, int]:
    """The open pair behind a pair address, who of it the From names, the directory version.

    A refusal stores nothing, so no commit would confirm the cached answer: it is
    asked again from the database before it is given.
    """
    token = token_of(recipient, domain)
    if token is None:
        raise RefusedError(replies.UNKNOWN_PAIR)
    refusal = replies.UNKNOWN_PAIR
    for fresh in (False, True):
        pair, version = directory.lookup(connection, token, fresh)
        if pair is None or pair.status not in OPEN_PAIR_STATES:
            refusal = replies.UNKNOWN_PAIR  # ended or never was: one answer, no oracle
            continue
        sender = pair.writer(from_address)
        if sender is None and believe_from:
            refusal = replies.STRANGER  # mode "off": From believed as written
            continue
        return pair, sender, version
    raise RefusedError(refusal)
