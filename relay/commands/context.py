"""The pieces every `relay` command shares: the context, tables, the moderator's name.

Context loads the configuration and opens the store lazily, so `relay --help`
and a usage error never touch either. This module and every command module
import only click and light modules at the top; what a command needs beyond
that (SQLAlchemy, jinja2, aiosmtpd, numpy) is imported inside the command, so
starting `relay` costs only what the command run needs (bench/startup.py).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from relay.config import Config
    from relay.store.db import Store

F = TypeVar("F", bound=Callable[..., Any])


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
        if self._store is None:
            from relay.store.db import open_store

            self._store = open_store(self.config.database.url, self.config.database)
        return self._store

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.store.session() as session:
            yield session

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


def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def printable(raw: bytes) -> str:
    from email import message_from_bytes

    from relay.mail.policy import POLICY

    message = message_from_bytes(raw, policy=POLICY)
    return message.as_string()
