"""`relay check-config` and `relay db`: the configuration and the schema."""

from __future__ import annotations

import click

from relay.commands.context import Context, pass_context
from relay.config import describe
from relay.store import db


@click.command("check-config")
@pass_context
def check_config(context: Context) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(describe(context.config))


@click.group("db")
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
