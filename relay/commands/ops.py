"""`relay status` and `relay purge`: watching the daemon, and keeping data no longer than needed."""

from __future__ import annotations

import sys

import click

from relay.commands.context import Context, counted, emit_json, json_option, pass_context
from relay.durations import format_duration, parse_duration
from relay.errors import ConfigError


@click.command("status")
@json_option
@pass_context
def status_command(context: Context, as_json: bool) -> None:
    """Is the daemon up and is mail moving? Exit status 0 if healthy, 1 if not."""
    from relay.ops import status

    with context.reader() as reader:
        report = status.collect(reader, context.config)
    if as_json:
        emit_json(report.as_json())
    else:
        state = f"running (pid {report.pid})" if report.running else "not running"
        click.echo(f"daemon:           {state}")
        click.echo("outbox:           " + ", ".join(f"{k} {v}" for k, v in report.outbox.items()))
        click.echo(f"oldest waiting:   {format_duration(report.oldest_waiting_seconds)}")
        click.echo(f"oldest held:      {format_duration(report.oldest_held_seconds)}")
        click.echo(f"overdue held:     {report.overdue_held}")
        last = report.last_delivery
        click.echo(f"last delivery:    {last.strftime('%Y-%m-%d %H:%M:%S UTC') if last else '-'}")
        click.echo("health:           " + ("ok" if report.healthy else "; ".join(report.problems)))
    sys.exit(0 if report.healthy else 1)


@click.command("purge")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Retention period after a pair ended, e.g. 365d.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@pass_context
def purge_command(context: Context, older_than: str, dry_run: bool) -> None:
    """Empty the message bodies of pairs that ended longer ago than the period."""
    from relay.ops import retention

    try:
        period = parse_duration(older_than, "--older-than")
    except ConfigError as error:
        raise click.BadParameter(str(error).removeprefix("--older-than: ")) from None
    with context.session() as session:
        report = retention.purge(session, period, dry_run=dry_run, domain=context.domain)
    verb = "would purge" if dry_run else "purged"
    click.echo(
        f"{verb} {counted(report.messages, 'message')} ({counted(report.bytes, 'byte')}) "
        f"of {counted(report.pairs, 'pair')} "
        f"that ended before {report.cutoff.strftime('%Y-%m-%d')}"
    )
    for line in report.kept:
        click.echo(f"kept {line}")
