"""The `relay` command line: a thin click layer over the modules below.

Each command parses its arguments, calls one function, and prints; the
commands live in relay/commands/, one module per area. Errors the relay
raises on purpose (RelayError) become "Error: ..." on stderr and exit status
1; a bad argument is click's usage error (exit status 2). Nothing else may
reach the user as a traceback either: a database or file error, or a bug,
is one "Error:" line too (RELAY_DEBUG=1 shows the traceback of a bug).

Shell completion is click's: `eval "$(_RELAY_COMPLETE=bash_source relay)"`
(zsh_source, fish_source for the other shells; docs/cli.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from relay.commands import (
    daemon,
    deploy,
    imap,
    matching,
    moderation,
    offers,
    ops,
    pairs,
    participants,
    people,
    programme,
    queue,
    report,
    safeguarding,
    set_aside,
    setup,
    transcripts,
)
from relay.commands.context import Context
from relay.errors import RelayError


class RelayGroup(click.Group):
    """Turns the relay's own errors into a clear message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except RelayError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise click.ClickException(f"{where}{error.strerror or error}") from None
        except Exception as error:
            if _is_database_error(error):
                cause = getattr(error, "orig", None) or error
                raise click.ClickException(f"database: {_first_line(cause)}") from None
            if os.environ.get("RELAY_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {_first_line(error)} "
                "(a bug; RELAY_DEBUG=1 shows where)"
            ) from None


def _is_database_error(error: Exception) -> bool:
    # The drivers are loaded only by commands that use the database, so they are not
    # imported here: SQLAlchemy's errors, and the DB-API drivers' own where a command
    # reads without SQLAlchemy (relay.store.plain).
    kinds = (("sqlalchemy.exc", "SQLAlchemyError"), ("sqlite3", "Error"), ("psycopg", "Error"))
    for module_name, class_name in kinds:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(error, getattr(module, class_name)):
            return True
    return False


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


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
    transcripts.log_command,
    transcripts.export_command,
    moderation.watch,
    moderation.held,
    moderation.show,
    moderation.approve,
    moderation.reject,
    moderation.discard,
    moderation.review,
    moderation.audit,
    set_aside.set_aside,
    matching.match,
    offers.offers_group,
    queue.queue_group,
    imap.imap_group,
    daemon.serve,
    ops.status_command,
    ops.purge_command,
    safeguarding.concern_group,
    safeguarding.sample_group,
    programme.cohort_group,
    programme.tick_command,
    programme.schedule_command,
    programme.checkins_command,
    programme.focus_command,
    report.report_command,
):
    cli.add_command(command)
matching.match.add_command(offers.match_offer)
people.participant_group.add_command(safeguarding.participant_consent)
people.participant_group.add_command(safeguarding.participant_check)
people.participant_group.add_command(safeguarding.participant_safeguarding)

for participant_command in (
    participants.participant_show,
    participants.participant_edit,
    participants.address_group,
    participants.participant_remove,
):
    people.participant_group.add_command(participant_command)
people.pair_group.add_command(pairs.pair_show)
people.pair_group.add_command(programme.pair_renew)
people.participant_group.add_command(programme.participant_reminders)
