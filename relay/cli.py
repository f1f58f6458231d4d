"""The `relay` command line: a thin click layer over the modules below.

Each command parses its arguments, calls one function, and prints; the
commands live in relay/commands/, one module per area. Errors the relay
raises on purpose (RelayError) become "Error: ..." and exit status 1; a bad
argument is click's usage error (exit status 2).
"""

from __future__ import annotations

from typing import Any

import click

from relay.commands import (
    daemon,
    deploy,
    imap,
    matching,
    moderation,
    ops,
    people,
    queue,
    safeguarding,
    setup,
)
from relay.commands.context import Context
from relay.errors import RelayError


class RelayGroup(click.Group):
    """Turns the relay's own errors into a clear message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelayError as error:
            raise click.ClickException(str(error)) from None


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


for command in (
    setup.check_config,
    setup.db_group,
    deploy.setup_group,
    people.participant_group,
    people.pair_group,
    people.log_command,
    moderation.watch,
    moderation.held,
    moderation.show,
    moderation.approve,
    moderation.reject,
    moderation.discard,
    moderation.review,
    moderation.audit,
    matching.match,
    queue.queue_group,
    imap.imap_group,
    daemon.serve,
    ops.status_command,
    ops.purge_command,
    safeguarding.concern_group,
    safeguarding.sample_group,
):
    cli.add_command(command)
people.participant_group.add_command(safeguarding.participant_consent)
people.participant_group.add_command(safeguarding.participant_check)
people.participant_group.add_command(safeguarding.participant_safeguarding)
