"""Who read what: the access log of every command that shows message content.

Owns recording a reading (who: the --as name or the login name; when; which
command; which pair, message or concern) and listing them for `relay audit
--reads`. The log is append-only: nothing here updates or deletes, no command
offers to, and the migration makes the database refuse UPDATE and DELETE on
the table. Commands record the reading in the same session that loads the
content, so a reading that was shown is a reading that was logged.
"""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.mail.addresses import pair_address
from relay.store.models import Pair
from relay.store.safeguarding_models import AccessLogEntry


def reader_name(given: str | None) -> str:
    return given.strip() if given and given.strip() else getpass.getuser()


def record(
    session: Session,
    reader: str,
    command: str,
    *,
    pair_id: int | None = None,
    message_id: int | None = None,
    concern_id: int | None = None,
    detail: str = "",
) -> None:
    session.add(
        AccessLogEntry(
            reader=reader,
            command=command,
            pair_id=pair_id,
            message_id=message_id,
            concern_id=concern_id,
            detail=detail,
        )
    )


def readings(session: Session, domain: str, pair_id: int | None = None) -> list[dict[str, Any]]:
    query = (
        select(AccessLogEntry, Pair.token)
        .outerjoin(Pair, Pair.id == AccessLogEntry.pair_id)
        .order_by(AccessLogEntry.read_at, AccessLogEntry.id)
    )
    if pair_id is not None:
        query = query.where(AccessLogEntry.pair_id == pair_id)
    return [
        {
            "time": entry.read_at.isoformat(timespec="seconds"),
            "reader": entry.reader,
            "command": entry.command,
            "pair": pair_address(token, domain) if token else None,
            "message": entry.message_id,
            "concern": entry.concern_id,
            "detail": entry.detail,
        }
        for entry, token in session.execute(query)
    ]
