"""`relay imap check`: try the [imap] mailbox without taking anything from it."""

from __future__ import annotations

import click

from relay.commands.context import Context, pass_context


@click.group("imap")
def imap_group() -> None:
    """The hosted mailbox the relay reads ([imap] in relay.toml)."""


@imap_group.command("check")
@pass_context
def imap_check(context: Context) -> None:
    """Log in, list the folders and count the messages waiting (nothing is moved)."""
    import asyncio

    from relay.sources import imapcheck

    config = context.config
    report = asyncio.run(imapcheck.check(config, lambda: context.store))
    settings = config.imap
    click.echo(f"logged in to {report.server} as {settings.user} (tls: {report.tls})")
    click.echo(f"capabilities: {' '.join(report.capabilities) or '(none of IDLE, MOVE, UIDPLUS)'}")
    click.echo("folders:")
    for folder in report.folders:
        click.echo(f"  {folder}")
    for folder in report.missing_folders:
        click.echo(f"  {folder} (missing; `relay serve` creates it)")
    waiting = f"waiting in {settings.mailbox}: {report.waiting}"
    if report.already_taken:
        waiting += f" ({report.already_taken} already taken, to be moved only)"
    click.echo(waiting)
