"""`relay check-config` and `relay db`: the configuration and the schema."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from relay.commands.context import Context, fail, pass_context
from relay.durations import format_duration

if TYPE_CHECKING:
    from relay.config import Config


@click.command("check-config")
@pass_context
def check_config(context: Context) -> None:
    """Print the effective settings (secrets masked); exit status 1 if any is unusable.

    Checks what `relay serve` would only warn about: [matching], and whether
    the database URL names a database this relay can open.
    """
    from relay.commands import database_url
    from relay.programme.curricula import default_folder
    from relay.programme.curriculum import load_curriculum

    config = context.config
    curriculum = load_curriculum(default_folder(config))
    click.echo(describe(config))
    click.echo(f"\n# curriculum {curriculum.folder}: {len(curriculum.items)} items, ok")
    if config.matching_problem:
        fail(config.matching_problem)
    database_url.check(config.database.url, create=True)


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(context: Context, revision: str) -> None:
    """Bring the database schema up to date (creating it if needed)."""
    from alembic.util import CommandError

    from relay.commands import database_url
    from relay.store import db

    database_url.check(context.config.database.url, create=True)
    store = db.Store(context.config.database.url)
    try:
        try:
            db.upgrade(store, revision)
        except CommandError as error:
            fail(
                f"cannot upgrade to revision {revision!r}: {error} (the newest is "
                f"{db.head_revision(store)})"
            )
        click.echo(f"database at revision {db.current_revision(store)}")
    finally:
        store.dispose()


@db_group.command("current")
@pass_context
def db_current(context: Context) -> None:
    """Show the schema revision of the database and of this relay."""
    from relay.commands import database_url
    from relay.store import db

    database_url.check(context.config.database.url, create=False)
    store = db.Store(context.config.database.url)
    try:
        click.echo(f"database: {db.current_revision(store) or 'empty'}")
        click.echo(f"relay:    {db.head_revision(store)}")
    finally:
        store.dispose()


SECRET_KEYS = frozenset({"password", "url", "secret"})


def describe(config: Config) -> str:
    """The effective settings as TOML-like text, secrets masked (``relay check-config``)."""
    from relay.config import SECTIONS

    lines = [f"# effective settings from {config.source}"]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        settings = getattr(config, section)
        for item in dataclasses.fields(settings):
            value = getattr(settings, item.name)
            line = f"{item.name} = {_show(item.name, value)}"
            if (section, item.name) == ("smtp", "hostname") and not value:
                line += f"  # empty: the greeting names {config.relay.domain}"
            lines.append(line)
    rules = config.rules
    lines.append("\n[rules]")
    lines.append("disable = [" + ", ".join(f'"{name}"' for name in sorted(rules.disabled)) + "]")
    lines.append("\n[rules.actions]")
    lines.extend(f'{rule} = "{action}"' for rule, action in sorted(rules.actions.items()))
    lines.append("\n[matching]")
    lines.append(f"offer_expires = {_show('offer_expires', config.offer_expires)}")
    lines.append("\n[matching.weights]")
    lines.extend(f'{name} = "{weight.value}"' for name, weight in config.matching.weights.items())
    return "\n".join(lines)


def _show(name: str, value: Any) -> str:
    if name in SECRET_KEYS and value:
        return '"' + mask_secret(str(value)) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f'"{format_duration(value, exact=True)}"'
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{each}"' for each in value) + "]"
    return f'"{value}"'


def mask_secret(value: str) -> str:
    """Hide a secret; for a URL keep everything but the password."""
    url_with_password = re.match(r"^([a-z0-9+]+://[^:/@]*:)([^@]*)(@.*)$", value)
    if url_with_password:
        return url_with_password.group(1) + "***" + url_with_password.group(3)
    if "://" in value:
        return value
    return "***"
