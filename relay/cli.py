"""The `relay` command line: a thin click layer over the modules below.

Each command parses its arguments, calls one function, and prints. Errors
the relay raises on purpose (RelayError) become "Error: ..." and exit
status 1; a bad argument is click's usage error (exit status 2).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import click
from sqlalchemy.orm import Session

from relay import db, registry, service, transcript
from relay.addresses import pair_address
from relay.config import Config, describe, load_config
from relay.errors import RelayError
from relay.models import Role
from relay.notices import Notices


@dataclass
class Context:
    config_path: str | None
    _config: Config | None = field(default=None)
    _store: db.Store | None = field(default=None)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> db.Store:
        if self._store is None:
            self._store = db.open_store(self.config.database.url)
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


class RelayGroup(click.Group):
    """Turns the relay's own errors into a clear message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelayError as error:
            raise click.ClickException(str(error)) from None


pass_context = click.make_pass_decorator(Context)


@click.group(cls=RelayGroup)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="RELAY_CONFIG",
    help="The relay.toml to use (default: $RELAY_CONFIG, then ./relay.toml).",
)
@click.version_option(package_name="mentor-relay")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """mentor-relay: pseudonymous, moderated email for mentoring programmes."""
    context = Context(config_path)
    ctx.obj = context
    ctx.call_on_close(context.close)


@cli.command("check-config")
@pass_context
def check_config(context: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(describe(context.config))


# -- database ---------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(context: Context, revision: str) -> None:
    """Bring the database schema up to date (creating it if needed)."""
    store = db.Store(context.config.database.url)
    try:
        db.upgrade(store, revision)
        click.echo(f"database at revision {db.current_revision(store)}")
    finally:
        store.dispose()


@db_group.command("current")
@pass_context
def db_current(context: Context) -> None:
    """Show the schema revision of the database and of this relay."""
    store = db.Store(context.config.database.url)
    try:
        click.echo(f"database: {db.current_revision(store) or 'empty'}")
        click.echo(f"relay:    {db.head_revision(store)}")
    finally:
        store.dispose()


# -- participants -----------------------------------------------------------


@cli.group("participant")
def participant_group() -> None:
    """Mentors and mentees."""


@participant_group.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Display name shown to the partner.")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--also", multiple=True, help="Another address this person writes from.")
@pass_context
def participant_add(
    context: Context, email: str, name: str, role: str, also: tuple[str, ...]
) -> None:
    """Register a participant."""
    with context.session() as session:
        participant = registry.add_participant(session, email, name, Role(role), also)
        click.echo(f"added {participant.role} {participant.display_name} <{participant.email}>")


@participant_group.command("list")
@pass_context
def participant_list(context: Context) -> None:
    """List participants."""
    with context.session() as session:
        rows = [
            (p.role.value, p.display_name, ", ".join(a.email for a in p.addresses))
            for p in registry.list_participants(session)
        ]
    _table(("ROLE", "NAME", "ADDRESSES"), rows)


# -- pairs ------------------------------------------------------------------


@cli.group("pair")
def pair_group() -> None:
    """Mentor-mentee pairs and their addresses."""


@pair_group.command("create")
@click.option("--mentor", "mentor_email", required=True)
@click.option("--mentee", "mentee_email", required=True)
@pass_context
def pair_create(context: Context, mentor_email: str, mentee_email: str) -> None:
    """Pair a mentor with a mentee, print the pair address, send introductions."""
    notices = Notices(context.config)
    with context.session() as session:
        created = registry.create_pair(session, notices, context.domain, mentor_email, mentee_email)
    click.echo(created.address)


@pair_group.command("list")
@click.option("--active", is_flag=True, help="Only pairs that are still active.")
@pass_context
def pair_list(context: Context, active: bool) -> None:
    """List pairs."""
    with context.session() as session:
        rows = [
            (
                pair_address(p.token, context.domain),
                p.status.value,
                p.mentor.display_name,
                p.mentee.display_name,
                p.created_at.strftime("%Y-%m-%d"),
            )
            for p in registry.list_pairs(session, include_ended=not active)
        ]
    _table(("ADDRESS", "STATUS", "MENTOR", "MENTEE", "CREATED"), rows)


@pair_group.command("end")
@click.argument("address")
@pass_context
def pair_end(context: Context, address: str) -> None:
    """End a pair: its address refuses mail from now on."""
    with context.session() as session:
        pair = registry.end_pair(session, address, context.domain)
        click.echo(f"ended {pair_address(pair.token, context.domain)}")


# -- transcript -------------------------------------------------------------


@cli.command("log")
@click.argument("address")
@click.option("--show", "show_id", type=int, help="Print message ID as it was received.")
@pass_context
def log_command(context: Context, address: str, show_id: int | None) -> None:
    """A pair's transcript, oldest first."""
    with context.session() as session:
        pair = registry.find_pair(session, address, context.domain)
        if show_id is not None:
            raw = transcript.message_in_pair(session, pair, show_id).raw
            click.echo(_printable(raw))
            return
        rows = [
            (
                str(line.message_id),
                line.received_at.strftime("%Y-%m-%d %H:%M"),
                line.sender_role,
                line.subject,
                line.status,
            )
            for line in transcript.transcript(session, pair)
        ]
    _table(("ID", "TIME (UTC)", "FROM", "SUBJECT", "STATUS"), rows)


# -- daemon -----------------------------------------------------------------


@cli.command("serve")
@click.option("--log-level", default=None, help="Override [logging] level.")
@pass_context
def serve(context: Context, log_level: str | None) -> None:
    """Run the SMTP server and the delivery worker until SIGTERM or SIGINT."""
    config = context.config
    logging.basicConfig(
        level=(log_level or config.logging.level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every envelope address at INFO; addresses stay out of our logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(service.serve(config))


# -- output helpers ---------------------------------------------------------


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _printable(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    return message.as_string()
