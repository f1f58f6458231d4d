"""`relay serve`: the daemon in the foreground (systemd runs it as Type=notify)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from relay.commands.context import Context, fail, pass_context

if TYPE_CHECKING:
    from relay.config import Config


@click.command("serve")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Override [logging] level.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Override [logging] format: one line per event, as text or as JSON.",
)
@pass_context
def serve(context: Context, log_level: str | None, log_format: str | None) -> None:
    """Run the SMTP server, IMAP source and delivery worker until SIGTERM or SIGINT.

    SIGHUP reloads the moderation rules, keyword lists, templates and
    moderators from the configuration file.
    """
    import errno
    import logging

    from relay import service  # the SMTP server, the worker and all they load
    from relay.commands import database_url
    from relay.ops import event_loop, logsetup

    config = context.config
    database_url.check(config.database.url, create=True)
    logsetup.configure(
        log_level or config.logging.level,
        "json" if (log_format or config.logging.format) == "json" else "text",
    )
    # aioimaplib logs protocol lines it does not expect at INFO; they may quote mail.
    logging.getLogger("aioimaplib").setLevel(logging.WARNING)
    if config.matching_problem:
        # Matching is a coordinator's tool: a mistake there must not stop the mail.
        logging.getLogger("relay.service").warning(
            "[matching] is not usable, `relay match` will refuse to run: %s",
            config.matching_problem,
        )
    try:
        event_loop.run(service.serve(config), config.daemon.event_loop)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            fail(_port_taken(config))
        raise


def _port_taken(config: Config) -> str:
    from relay.ops.status import daemon_pid

    smtp = config.smtp
    where = smtp.socket if smtp.enabled and smtp.socket else f"{smtp.host}:{smtp.port}"
    if config.metrics.enabled:
        where += f" or {config.metrics.host}:{config.metrics.port} (metrics)"
    pid, running = daemon_pid(config.daemon.pid_file)
    if running:
        return (
            f"cannot listen on {where}: address already in use; a relay is already running "
            f"(pid {pid}, from {config.daemon.pid_file})"
        )
    return (
        f"cannot listen on {where}: address already in use by another program "
        "([smtp] port in relay.toml chooses another)"
    )
