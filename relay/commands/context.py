"""The pieces every `relay` command shares: the context, output, ids, the moderator's name.

Context loads the configuration and opens the store lazily, so `relay --help`
and a usage error never touch either; `reader()` reads without SQLAlchemy
where it can (relay.store.plain), for the commands that must start fast.
Output helpers keep every command alike: `table` for people, `emit_json`
for scripts (`--json`), `fail` and `report_error` on stderr, `counted` for
"1 pair" / "2 pairs". `MESSAGE_ID` and `OUTBOX_ID` read an id; an id no row
can have is "not found", never an overflow deep in the database driver.
This module and every command module import only click and light modules at
the top; what a command needs beyond that (SQLAlchemy, jinja2, aiosmtpd,
numpy) is imported inside the command, so starting `relay` costs only what
the command run needs (bench/startup.py).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from relay.config import Config
    from relay.store.db import Store
    from relay.store.plain import Reader

F = TypeVar("F", bound=Callable[..., Any])

# Row ids are INTEGER columns: 32 bits on PostgreSQL, the smaller of the two backends.
ROW_ID_MAX = 2**31 - 1


@dataclass
class Context:
    config_path: str | None
    _config: Config | None = field(default=None)
    _store: Store | None = field(default=None)

    @property
    def config(self) -> Config:
        if self._config is None:
            from relay.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        """The database, which must exist (only `serve` and `db upgrade` create one)."""
        if self._store is None:
            from relay.commands import database_url
            from relay.store.db import open_store

            url = self.config.database.url
            database_url.check(url, create=False)
            self._store = open_store(url, self.config.database)
        return self._store

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work; if it queued mail, the running daemon is woken after the commit.

        On PostgreSQL the same transaction NOTIFYs every daemon on the database, on any
        host (relay.store.notify), also when it changed a pair or a participant.
        """
        from sqlalchemy import event

        from relay.ops.wakeup import QUEUED_MAIL, wake_daemon
        from relay.store.notify import announce, note_changes

        with self.store.session() as session:
            event.listen(session, "after_flush", note_changes)
            yield session
            announce(session)
        if session.info.get(QUEUED_MAIL):
            wake_daemon(self.config.daemon.pid_file)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """Reads by SQL text (relay.store.plain): without SQLAlchemy when it can, else the store."""
        from relay.store.plain import SqlAlchemyReader, plain_reader

        with plain_reader(self.config.database) as plain:
            if plain is not None:
                yield plain
                return
        with self.store.read_session() as session:
            yield SqlAlchemyReader(session)

    @property
    def domain(self) -> str:
        return self.config.relay.domain

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_context = click.make_pass_decorator(Context)


def moderator_option(function: F) -> F:
    return click.option(
        "--as",
        "moderator",
        default=getpass.getuser,
        show_default="your login name",
        help="The moderator's name, for the audit trail.",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")(
        function
    )


class RowId(click.ParamType[int]):
    """A message or outbox id: a whole number; one too large to exist is simply not found."""

    name = "id"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            if not text.isdigit():
                self.fail(f"{value!r} is not a {self.what} id (a whole number)", param, ctx)
            number = int(text)
        if not 1 <= number <= ROW_ID_MAX:
            raise click.ClickException(f"no {self.what} {number}")
        return number


MESSAGE_ID = RowId("message")
OUTBOX_ID = RowId("outbox entry")


def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """'1 pair', '2 pairs', '0 entries' (with plural='entries')."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"


def report_error(text: str) -> None:
    """One item of several failed: 'Error: text' on stderr; the command goes on."""
    click.echo(f"Error: {text}", err=True)


def fail(text: str) -> NoReturn:
    """Stop the command: 'Error: text' on stderr, exit status 1."""
    raise click.ClickException(text)


def exit_failed(failed: bool) -> None:
    """After items were reported with report_error(): exit status 1 if any failed."""
    if failed:
        sys.exit(1)


def printable(raw: bytes) -> str:
    from email import message_from_bytes

    from relay.mail.policy import POLICY

    message = message_from_bytes(raw, policy=POLICY)
    return message.as_string()
