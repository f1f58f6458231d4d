"""`relay serve`: the daemon in the foreground."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from relay import service
from relay.clikit import Context, pass_context


@click.command("serve")
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
