"""`relay serve`: the daemon in the foreground (systemd runs it as Type=notify)."""

from __future__ import annotations

import click

from relay.commands.context import Context, pass_context


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
    import asyncio
    import logging

    from relay import service  # the SMTP server, the worker and all they load
    from relay.ops import logsetup

    config = context.config
    logsetup.configure(
        log_level or config.logging.level,
        "json" if (log_format or config.logging.format) == "json" else "text",
    )
    # aioimaplib logs protocol lines it does not expect at INFO; they may quote mail.
    logging.getLogger("aioimaplib").setLevel(logging.WARNING)
    asyncio.run(service.serve(config))
